"""Benchmark: the event picker and the plan review with 10,000 events in one workspace.

Runs in-process against a fresh SQLite file database (DATABASE_URL, then `migrate`)
with Django's test client: the catalog arrives through `POST /api/v1/events` in
batches of 1,000, then the picker's first page, a filtered page and the review of a
1,000-event plan are each rendered several times. Times are server time (the test
client calls the WSGI handler directly, no network); queries are counted with
CaptureQueriesContext at 100 events and at 10,000, and must not grow.

Prints one line per figure and writes the same figures to bench/results/picker.json.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "picker.json"
CATALOG = 10_000
SMALL = 100
BATCH = 1_000
PLAN_EVENTS = 1_000
RUNS = 15
WARMUP = 2
FILTERED = {
    "q": "checkout",
    "value_kind": "conversion",
    "seen": "30",
    "mapped": "no",
    "order": "-volume",
}

WORKDIR = Path(tempfile.mkdtemp(prefix="bench-picker-"))
os.environ["DATABASE_URL"] = f"sqlite:///{WORKDIR / 'bench.sqlite3'}"
os.environ["REDIS_URL"] = ""
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "connector.settings")
sys.path.insert(0, str(ROOT))

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402

# A cache of our own, so the benchmark neither reads nor leaves anything shared.
settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

from django.core.cache import cache  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection as db  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_test_environment  # noqa: E402
from django.urls import reverse  # noqa: E402

AREAS = ("checkout", "search", "page", "video", "account", "cart", "onboarding", "billing")
ACTIONS = ("started", "completed", "clicked", "viewed", "failed", "submitted", "opened")
UNITS = ("ms", "USD", "items", "seconds")


def definitions(count: int) -> list[dict]:
    rng = random.Random(42)
    now = datetime.now(UTC)
    result = []
    for i in range(count):
        area, action = AREAS[i % len(AREAS)], ACTIONS[(i // len(AREAS)) % len(ACTIONS)]
        numeric = i % 4 == 0
        seen = now - timedelta(hours=rng.randint(0, 24 * 60))
        result.append(
            {
                "key": f"{area}.{action}_{i:05d}",
                "name": f"{area.title()} {action} {i}",
                "description": f"Sent when the {area} step is {action} (variant {i % 37}).",
                "value_kind": "numeric" if numeric else "conversion",
                "unit": UNITS[i % len(UNITS)] if numeric else "",
                "first_seen": (seen - timedelta(days=rng.randint(0, 300))).isoformat(),
                "last_seen": seen.isoformat(),
                "volume": rng.randint(0, 1_000_000),
            }
        )
    return result


def post_events(client: Client, raw_key: str, batch: list[dict]) -> None:
    response = client.post(
        "/api/v1/events",
        data=json.dumps({"events": batch}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {raw_key}"},
    )
    if response.status_code >= 300:
        sys.exit(f"POST /api/v1/events answered {response.status_code}: {response.content[:300]}")


def timed_get(client: Client, url: str, params: dict | None = None) -> tuple[float, int]:
    with CaptureQueriesContext(db) as queries:
        started = time.perf_counter()
        response = client.get(url, params or {})
        elapsed = time.perf_counter() - started
    if response.status_code != 200:
        sys.exit(f"GET {url} answered {response.status_code}")
    return elapsed * 1000, len(queries)


def median_ms(client: Client, url: str, params: dict | None = None) -> float:
    for _ in range(WARMUP):
        timed_get(client, url, params)
    return statistics.median(timed_get(client, url, params)[0] for _ in range(RUNS))


def main() -> None:
    from connector.connections.models import AuthKind, LaunchDarklyConnection, Status
    from connector.metrics.models import MetricMapping, MetricPlan
    from connector.planner.plans import PlanAction, plan_compute
    from connector.planner.views import UnitOffer, _units_cache_key, remote_marker
    from connector.sources.models import SourceEvent
    from connector.sources.services import api_key_create
    from tenants.models import Membership, Role, Tenant, User
    from tenants.scope import tenant_scope

    setup_test_environment()
    call_command("migrate", verbosity=0)

    user = User.objects.create_user("bench@example.com", "a bench password 2026")
    tenant = Tenant.objects.create(name="Bench", slug="bench")
    Membership.objects.create(user=user, tenant=tenant, role=Role.OWNER)
    with tenant_scope(tenant):
        _, raw_key = api_key_create(actor=user, name="bench")
        connection = LaunchDarklyConnection(
            instance="commercial",
            auth_kind=AuthKind.API_TOKEN,
            status=Status.ACTIVE,
            account_id="bench",
            member_id="bench",
            project_key="default",
            project_name="Default",
        )
        connection.set_tokens(access_token="api-bench-0000000000000000000000")
        connection.save()
    # As if LaunchDarkly had answered the randomization units (and, per plan below, its
    # metrics on the plan's events): the figures are ours, not its.
    cache.set(
        _units_cache_key(connection), UnitOffer(["device", "organization", "user"], "user"), 3600
    )

    api = Client()
    web = Client()
    web.force_login(user)
    picker_url = reverse("planner:picker", args=[tenant.slug])
    catalog = definitions(CATALOG)

    def make_plan(count: int) -> str:
        """A plan of `count` events, a tenth of them already synced metrics."""
        with tenant_scope(tenant):
            ids = list(SourceEvent.objects.order_by("key").values_list("pk", flat=True)[:count])
            synced = MetricPlan.objects.create(
                created_by=user, selection={"ids": ids[::10]}, choices={}
            )
            rows = [r for r in plan_compute(plan=synced).rows if r.action == PlanAction.CREATE]
            for row in rows:
                row.mapping.applied_hash = row.mapping.desired_hash
                row.mapping.status = "synced"
            MetricMapping.objects.bulk_create([r.mapping for r in rows], ignore_conflicts=True)
            plan = MetricPlan.objects.create(
                created_by=user, selection={"ids": ids}, choices={"tags": ["bench"]}
            )
        cache.set(remote_marker(plan, connection), True, 3600)
        return reverse("planner:plan", args=[tenant.slug, plan.pk])

    def make_design_plan(count: int) -> str:
        """A plan of `count` events as metric sets, a tenth of them with a property
        filter too, and two funnels of three steps: issue 16's shapes."""
        with tenant_scope(tenant):
            keys = list(SourceEvent.objects.order_by("key").values_list("key", flat=True)[:count])
            SourceEvent.objects.filter(key__in=keys).update(
                properties={"plan": "string", "amount": "number"}
            )
            ids = list(SourceEvent.objects.filter(key__in=keys).values_list("pk", flat=True))
            conversion = list(
                SourceEvent.objects.filter(key__in=keys, value_kind="conversion")
                .order_by("key")
                .values_list("key", flat=True)[:6]
            )
            funnels = [
                {"name": f"Funnel {n}", "kind": "funnel", "metrics": [{"event": k} for k in part]}
                for n, part in enumerate((conversion[:3], conversion[3:6]))
            ]
            plan = MetricPlan.objects.create(
                created_by=user,
                selection={"ids": ids},
                choices={
                    "metric_set": True,
                    "filtered": [[key, "plan = pro and amount > 100"] for key in keys[::10]],
                    "groups": funnels,
                },
            )
        cache.set(remote_marker(plan, connection), True, 3600)
        return reverse("planner:plan", args=[tenant.slug, plan.pk])

    def page_queries(plan_url: str) -> dict[str, int]:
        for _ in range(WARMUP):
            timed_get(web, picker_url)
        return {
            "first": timed_get(web, picker_url)[1],
            "filtered": timed_get(web, picker_url, FILTERED)[1],
            "plan": timed_get(web, plan_url)[1],
        }

    # 100 events: the baseline query counts.
    post_events(api, raw_key, catalog[:SMALL])
    small = page_queries(make_plan(SMALL))
    small_design = timed_get(web, make_design_plan(SMALL))[1]

    # 10,000 definitions through the API, in batches of 1,000 (the first 100 are updates).
    started = time.perf_counter()
    for offset in range(0, CATALOG, BATCH):
        post_events(api, raw_key, catalog[offset : offset + BATCH])
    ingest_s = time.perf_counter() - started
    with tenant_scope(tenant):
        stored = SourceEvent.objects.count()
    if stored != CATALOG:
        sys.exit(f"expected {CATALOG} events after ingest, found {stored}")

    plan_url = make_plan(PLAN_EVENTS)
    large = page_queries(plan_url)
    design_url = make_design_plan(PLAN_EVENTS)
    large_design = timed_get(web, design_url)[1]
    figures = {
        "picker_first_page_ms": round(median_ms(web, picker_url), 1),
        "picker_filtered_page_ms": round(median_ms(web, picker_url, FILTERED), 1),
        "plan_1000_ms": round(median_ms(web, plan_url), 1),
        # 1,000 events as metric sets (2 metrics each), 100 filtered (2 more each), 2 funnels.
        "design_plan_1000_ms": round(median_ms(web, design_url), 1),
        "design_queries_growth": large_design - small_design,
        "queries_growth": sum(large[page] - small[page] for page in small),
        "ingest_10k_s": round(ingest_s, 2),
    }
    units = {"queries_growth": "queries", "design_queries_growth": "queries", "ingest_10k_s": "s"}
    for name, value in figures.items():
        print(f"{name}: {value} {units.get(name, 'ms')}")
    print(f"# queries per page at {SMALL} events: {small}; at {CATALOG}: {large}", file=sys.stderr)
    print(
        f"# design plan queries at {SMALL}: {small_design}; at {PLAN_EVENTS}: {large_design}",
        file=sys.stderr,
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
