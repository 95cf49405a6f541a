"""Benchmark: the sync status pages with a 10,000-item run.

In-process against a fresh SQLite file database (`migrate` first), with Django's
test client: a workspace gets a run of 10 items and, in a second workspace, a run of
10,000 items (a third of them failed, so the failed filter has work to do). The
status page, the run page and the progress fragment are rendered several times each;
times are server time (the test client calls the WSGI handler directly). Queries are
counted with CaptureQueriesContext for each page at 10 and at 10,000 items.

Prints one line per figure and writes the same figures to bench/results/status_page.json.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "status_page.json"
SMALL, LARGE = 10, 10_000
RUNS, WARMUP = 15, 2

WORKDIR = Path(tempfile.mkdtemp(prefix="bench-status-"))
os.environ["DATABASE_URL"] = f"sqlite:///{WORKDIR / 'bench.sqlite3'}"
os.environ["VAR_DIR"] = str(WORKDIR)
os.environ["REDIS_URL"] = ""
os.environ["ALLOWED_HOSTS"] = "testserver"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "connector.settings")
sys.path.insert(0, str(ROOT))

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.urls import reverse  # noqa: E402

from connector.sync.models import ItemStatus, SyncItem  # noqa: E402
from tenants.models import Membership, Role, Tenant, User  # noqa: E402
from tenants.scope import tenant_scope  # noqa: E402


def workspace_with_run(slug: str, items: int):
    from tests.sync.factories import make_run

    tenant = Tenant.objects.create(name=slug, slug=slug)
    user = User.objects.create_user(f"{slug}@example.com", "bench-password-123")
    Membership.objects.create(user=user, tenant=tenant, role=Role.ADMIN)
    run = make_run(tenant, items=items, status=ItemStatus.DONE, prefix=slug)
    with tenant_scope(tenant):
        ids = list(SyncItem.objects.filter(run=run).values_list("pk", flat=True)[::3])
        SyncItem.objects.filter(pk__in=ids).update(
            status=ItemStatus.FAILED, error_message="unit is required", last_http_status=400
        )
    client = Client()
    client.force_login(user)
    return tenant, run, client


def urls(tenant, run):
    return {
        "status": reverse("sync:status", args=[tenant.slug]),
        "run": reverse("sync:run", args=[tenant.slug, run.pk]) + "?show=failed",
        "progress": reverse("sync:progress", args=[tenant.slug, run.pk]),
    }


def median_ms(client, url: str) -> float:
    times = []
    for i in range(WARMUP + RUNS):
        started = time.perf_counter()
        response = client.get(url)
        elapsed = (time.perf_counter() - started) * 1000
        assert response.status_code == 200, (url, response.status_code)
        if i >= WARMUP:
            times.append(elapsed)
    return statistics.median(times)


def queries(client, url: str) -> int:
    client.get(url)
    with CaptureQueriesContext(connection) as captured:
        client.get(url)
    return len(captured)


def main() -> None:
    call_command("migrate", verbosity=0)
    small = workspace_with_run("small", SMALL)
    large = workspace_with_run("large", LARGE)
    small_urls, large_urls = urls(small[0], small[1]), urls(large[0], large[1])

    figures = {
        "status_page_ms": round(median_ms(large[2], large_urls["status"]), 1),
        "run_page_ms": round(median_ms(large[2], large_urls["run"]), 1),
        "progress_fragment_ms": round(median_ms(large[2], large_urls["progress"]), 1),
        "queries_growth": max(
            queries(large[2], large_urls[name]) - queries(small[2], small_urls[name])
            for name in large_urls
        ),
        "status_page_queries": queries(large[2], large_urls["status"]),
    }
    units = {"queries_growth": "queries", "status_page_queries": "queries"}
    for name, value in figures.items():
        print(f"{name}: {value} {units.get(name, 'ms')}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
