"""A real sync in a real Celery worker moves the counters that the web's /metrics shows:
the worker is another process, and its counts reach the web through the shared totals."""

import pytest

from connector.sync.models import FINISHED_STATUSES, ItemStatus, SyncItem
from tests.observability.conftest import scrape, value
from tests.sync.conftest import apply_plan, connect_workspace, make_events
from tests.sync.test_engine import run_all
from tests.workers import running_worker, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

CREATE = {"method": "POST", "route": "/api/v2/metrics/{projectKey}", "status": "201"}


def _finished(run):
    unfinished = SyncItem.objects.unscoped().filter(run=run).exclude(status__in=FINISHED_STATUSES)
    return not unfinished.exists()


def test_sync_in_a_worker__counters_move_between_two_scrapes(
    client, metrics_token, connected, workspace, admin, ld
):
    events = make_events(workspace, 4, numeric_every=0)
    before = scrape(client)

    with running_worker(pool="threads", concurrency=4, LAUNCHDARKLY_BASE_URL=ld.base_url):
        run = apply_plan(workspace, admin.user, events)  # its first pump, after the purge
        assert wait_until(lambda: _finished(run), timeout=60, interval=0.2)
        after = scrape(client)

    statuses = set(SyncItem.objects.unscoped().filter(run=run).values_list("status", flat=True))
    assert statuses == {ItemStatus.DONE}
    created = value(after, "connector_launchdarkly_requests_total", **CREATE) - value(
        before, "connector_launchdarkly_requests_total", **CREATE
    )
    assert created == 4
    done = value(after, "connector_sync_items_total", outcome="done") - value(
        before, "connector_sync_items_total", outcome="done"
    )
    assert done == 4
    timed = {"method": "POST", "route": CREATE["route"]}
    calls = value(after, "connector_launchdarkly_request_duration_seconds_count", **timed)
    calls -= value(before, "connector_launchdarkly_request_duration_seconds_count", **timed)
    assert calls == 4
    slowest = value(
        after, "connector_launchdarkly_request_duration_seconds_bucket", le="+Inf", **timed
    )
    assert slowest >= 4
    # Nothing of the run is left in the queue gauges.
    assert not any(
        name == "connector_sync_queue_depth" and ("workspace", workspace.slug) in labels
        for name, labels in after
    )


def test_rate_limited_sync__waits_counted(
    client, client_of, metrics_token, workspace, admin, ld_with
):
    sandbox = ld_with(rate_window_s=1.0)
    connect_workspace(client_of(admin), workspace, sandbox)
    sandbox.set_limits(route_per_10s=2)
    events = make_events(workspace, 4, numeric_every=0)
    before = scrape(client)

    apply_plan(workspace, admin.user, events)
    run_all(workspace)  # in this process: waits for the limit inline, or defers items

    after = scrape(client)
    waits = sum(
        amount - value(before, name, **dict(labels))
        for (name, labels), amount in after.items()
        if name == "connector_launchdarkly_ratelimit_wait_seconds_count"
    )
    assert waits >= 1
