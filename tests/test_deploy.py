"""Production settings pass Django's deployment checks, and migrations are complete."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent


def clean_environ():
    # The browser tests' test-only async escape hatch must not reach a deploy check.
    return {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}


def manage(*args, **env):
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean_environ(), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def production_env(**overrides):
    """Everything production needs, set to values of its own; `None` leaves one out."""
    env = {
        "DJANGO_ENV": "production",
        "SECRET_KEY": "x" * 20 + Fernet.generate_key().decode(),
        "ALLOWED_HOSTS": "connector.example.com",
        "PUBLIC_URL": "https://connector.example.com",
        "TOKEN_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "LAUNCHDARKLY_OAUTH_CLIENT_ID": "partner-client-id",
        "LAUNCHDARKLY_OAUTH_CLIENT_SECRET": "partner-client-secret-from-launchdarkly",
        **overrides,
    }
    return {name: value for name, value in env.items() if value is not None}


def check_deploy(env):
    base = {
        k: v
        for k, v in clean_environ().items()
        if k not in ("PUBLIC_URL", "TOKEN_ENCRYPTION_KEYS") and not k.startswith("LAUNCHDARKLY_")
    }
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy__production_settings__no_warning():
    result = check_deploy(production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


# Production as installed without the `sandbox` extra: neither the sandbox nor its
# dependencies can be imported.
WITHOUT_SANDBOX = """
import sys

class NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("sandbox", "jsonschema"):
            raise ModuleNotFoundError(f"No module named {name!r}")

sys.meta_path.insert(0, NotInstalled())
import django
from django.conf import settings
from django.core.management import call_command

django.setup()
print("INSTALLED_APPS", *settings.INSTALLED_APPS)
call_command("check", deploy=True, fail_level="WARNING")
import connector.urls, connector.wsgi, connector.celery
"""


def test_production_settings__without_the_sandbox_extra__no_sandbox_and_checks_pass():
    env = production_env(DJANGO_SETTINGS_MODULE="connector.settings")
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_SANDBOX],
        cwd=ROOT,
        env={**clean_environ(), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    apps = next(line for line in result.stdout.splitlines() if line.startswith("INSTALLED_APPS"))
    assert "connector.sync" in apps.split() and "sandbox" not in apps.split()
    assert "no issues" in result.stdout + result.stderr


def test_development_settings__sandbox_installed():
    from django.conf import settings

    assert "sandbox" in settings.INSTALLED_APPS


DEVELOPMENT_KEY = "ZGV2LW9ubHktZmVybmV0LWtleS1ub3QtZm9yLXByb2Q="


@pytest.mark.parametrize(
    ("overrides", "error", "says"),
    [
        ({"TOKEN_ENCRYPTION_KEYS": None}, "connector.E001", "TOKEN_ENCRYPTION_KEYS is not set"),
        (
            {"TOKEN_ENCRYPTION_KEYS": f"{Fernet.generate_key().decode()},{DEVELOPMENT_KEY}"},
            "connector.E002",
            "public development key",
        ),
        ({"LAUNCHDARKLY_OAUTH_CLIENT_ID": None}, "connector.E003", "OAUTH_CLIENT_ID"),
        ({"LAUNCHDARKLY_OAUTH_CLIENT_SECRET": None}, "connector.E004", "OAUTH_CLIENT_SECRET"),
        (
            {"LAUNCHDARKLY_OAUTH_CLIENT_SECRET": "connector-dev-secret"},
            "connector.E004",
            "sandbox's public secret",
        ),
        ({"PUBLIC_URL": None}, "connector.E005", "not empty"),
        ({"PUBLIC_URL": "http://127.0.0.1:8000"}, "connector.E005", "http://127.0.0.1:8000"),
    ],
    ids=[
        "no-encryption-key",
        "development-key",
        "no-client-id",
        "no-client-secret",
        "sandbox-secret",
        "no-public-url",
        "loopback-public-url",
    ],
)
def test_check_deploy__unsafe_default__refused_with_a_clear_message(overrides, error, says):
    result = check_deploy(production_env(**overrides))
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert error in output and says in output, output


def test_production_settings__no_secret_key__refuses_to_start():
    env = {k: v for k, v in clean_environ().items() if k != "SECRET_KEY"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**env, "DJANGO_ENV": "production", "ALLOWED_HOSTS": "x.example.com"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_production_response__csp_enforced_without_inline_script(client, settings):
    response = client.get("/signin/")
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "<script>" not in response.content.decode()


def test_makemigrations__models_match_migrations():
    result = manage("makemigrations", "--check", "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr
