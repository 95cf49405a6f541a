"""Sentry is initialised only when SENTRY_DSN is set; otherwise never even imported."""

import json
import subprocess
import sys

from tests.test_deploy import ROOT, clean_environ

PROBE = """
import json, sys
import django
django.setup()
from connector.celery import app
app.loader.import_default_modules()
report = {"imported": "sentry_sdk" in sys.modules}
if report["imported"]:
    import sentry_sdk
    client = sentry_sdk.get_client()
    report.update(
        active=client.is_active(),
        integrations=sorted(client.integrations),
        send_default_pii=client.options["send_default_pii"],
        include_local_variables=client.options["include_local_variables"],
    )
print(json.dumps(report))
"""


def probe(**env):
    base = {k: v for k, v in clean_environ().items() if k != "SENTRY_DSN"}
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "connector.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_sentry__no_dsn__not_imported_nor_initialised():
    assert probe() == {"imported": False}


def test_sentry__dsn_set__initialised_with_django_and_celery_and_no_pii():
    report = probe(SENTRY_DSN="https://publickey@127.0.0.1:9/1")
    assert report["active"] is True
    assert {"django", "celery"} <= set(report["integrations"])
    assert report["send_default_pii"] is False
    assert report["include_local_variables"] is False
