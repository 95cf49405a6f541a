"""Hardening of the sync engine against a hostile LaunchDarkly and slow workers:
a worker whose claim was taken over cannot overwrite the result, an item's time is
bounded by the connector itself, and absurd rate-limit headers never park an item."""

import threading
import time

import pytest
from django.db import connection as db_connection
from django.utils import timezone

from connector.connections.services import budget_for
from connector.metrics.models import MappingStatus, MetricMapping
from connector.sync import services
from connector.sync.models import ItemStatus, SyncItem
from tenants.scope import tenant_scope
from tests.sync.conftest import apply_plan, connect_workspace, make_events, sandbox_metrics

CREATE_PATH = "/api/v2/metrics/default"


def in_thread(workspace, target):
    """Run `target()` in the workspace's scope on a thread of its own (a second worker)."""
    result = {}

    def run():
        try:
            with tenant_scope(workspace):
                result["value"] = target()
        except BaseException as exc:  # reported to the test, not lost in the thread
            result["error"] = exc
        finally:
            db_connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, result


def item_row(item_id):
    return SyncItem.objects.unscoped().get(pk=item_id)


@pytest.mark.django_db(transaction=True)
def test_item__claim_taken_while_first_worker_hangs__its_late_answer_is_discarded(
    client_of, workspace, admin, ld_with, settings
):
    settings.SYNC_STALE_CLAIM_S = 1
    arrived, release = threading.Event(), threading.Event()

    def hold_first_create(request, response):
        # The first worker's create reaches LaunchDarkly and is applied; its answer
        # hangs past the stale-claim limit, then never arrives.
        if request.method == "POST" and request.path == CREATE_PATH and not arrived.is_set():
            arrived.set()
            release.wait(15)
            response.transport_fault = "drop"

    ld = ld_with(observer=hold_first_create)
    connect_workspace(client_of(admin), workspace, ld)
    apply_plan(workspace, admin.user, make_events(workspace, 1, numeric_every=0))
    with tenant_scope(workspace):
        (item_id,) = services.pump()

    stale, stale_result = in_thread(workspace, lambda: services.item_run(item_id=item_id))
    assert arrived.wait(10)
    time.sleep(1.2)  # the first claim now looks abandoned
    with tenant_scope(workspace):
        second = services.item_run(item_id=item_id)  # takes the claim over
    release.set()
    stale.join(20)

    assert "error" not in stale_result, stale_result
    assert second == ItemStatus.DONE
    assert stale_result["value"] is None  # the stale worker's outcome was not recorded
    item = item_row(item_id)
    assert item.status == ItemStatus.DONE and item.error_message == ""
    with tenant_scope(workspace):
        assert MetricMapping.objects.get().status == MappingStatus.SYNCED
    assert len(sandbox_metrics(ld)) == 1


@pytest.mark.django_db(transaction=True)
def test_item__long_rate_limit_wait__heartbeats_so_the_sweeper_leaves_it(
    connected, workspace, admin, ld, settings
):
    settings.SYNC_STALE_CLAIM_S = 1
    settings.SYNC_MAX_INLINE_WAIT_S = 5
    apply_plan(workspace, admin.user, make_events(workspace, 1, numeric_every=0))
    # The account's budget is spent for the next 2.5 s: the item waits in the worker.
    budget = budget_for(connected)
    budget.acquire("POST /api/v2/metrics/{projectKey}")
    from connector.launchdarkly.ratelimit import RateLimitInfo

    budget.release(
        "POST /api/v2/metrics/{projectKey}",
        RateLimitInfo(global_remaining=0, route_remaining=0, reset_at=time.time() + 2.5),
    )
    with tenant_scope(workspace):
        (item_id,) = services.pump()

    worker, result = in_thread(workspace, lambda: services.item_run(item_id=item_id))
    time.sleep(1.6)  # longer than the stale-claim limit, within the wait
    freed_by_sweeper = services.sweep_stale_claims()
    status_meanwhile = item_row(item_id).status
    worker.join(20)

    assert freed_by_sweeper == []
    assert status_meanwhile == ItemStatus.IN_FLIGHT
    assert result.get("value") == ItemStatus.DONE, result
    assert len(sandbox_metrics(ld)) == 1


@pytest.mark.django_db
def test_item__time_limit_reached__no_further_call_and_retried_later(
    connected, workspace, admin, ld, settings
):
    events = make_events(workspace, 1, numeric_every=0)
    apply_plan(workspace, admin.user, events)
    # A managed metric with other fields is already there: create, 409, read, patch.
    with tenant_scope(workspace):
        mapping = MetricMapping.objects.get()
    from connector.metrics.desired import metric_body

    body = metric_body(mapping, event_key=events[0].key)
    ld_body = {**body, "name": "Renamed by hand"}
    import requests

    requests.post(
        f"{ld.base_url}{CREATE_PATH}",
        json=ld_body,
        headers={"Authorization": ld.mint_token("writer")},
        timeout=5,
    ).raise_for_status()
    ld.set_faults(rate=0, latency_ms=400)
    settings.SYNC_ITEM_TIME_LIMIT_S = 0.6
    seq = ld.requests_since(0)[-1]["seq"]
    with tenant_scope(workspace):
        (item_id,) = services.pump()
        status = services.item_run(item_id=item_id)

    sent = [(r["method"], r["path"]) for r in ld.requests_since(seq)]
    assert status == ItemStatus.RETRYING
    assert sent[0] == ("POST", CREATE_PATH)  # it began, met the 409 ...
    assert ("PATCH", f"{CREATE_PATH}/{mapping.metric_key}") not in sent  # ... and stopped
    item = item_row(item_id)
    assert "time limit" in item.error_message and item.next_attempt_at > timezone.now()


@pytest.mark.parametrize(
    "reset_header",
    [
        pytest.param(lambda now: str(int((now + 10 * 365 * 86_400) * 1000)), id="ten-years"),
        pytest.param(lambda now: "1e15", id="1e15-ms"),
    ],
)
@pytest.mark.django_db
def test_item__absurd_rate_limit_reset__malformed_answer_not_a_decade_wait(
    client_of, workspace, admin, ld_with, settings, reset_header
):
    def hostile_headers(request, response):
        if request.path.startswith(CREATE_PATH):
            response.headers["X-Ratelimit-Reset"] = reset_header(time.time())
            response.headers["X-Ratelimit-Global-Remaining"] = "0"
            response.headers["X-Ratelimit-Route-Remaining"] = "0"

    ld = ld_with(observer=hostile_headers, rate_window_s=86_400)
    connection = connect_workspace(client_of(admin), workspace, ld)
    apply_plan(workspace, admin.user, make_events(workspace, 3, numeric_every=0))

    with tenant_scope(workspace):
        for _ in range(3):
            for item_id in services.pump():
                services.item_run(item_id=item_id)
        items = list(SyncItem.objects.order_by("id"))

    horizon = timezone.now().timestamp() + settings.SYNC_BACKOFF_CAP_S + 60
    assert all(i.status != ItemStatus.IN_FLIGHT for i in items)
    assert all(i.next_attempt_at is None or i.next_attempt_at.timestamp() < horizon for i in items)
    assert any("rate-limit header" in i.error_message for i in items), [
        i.error_message for i in items
    ]
    limited_until = budget_for(connection).limited_until()
    assert limited_until is None or limited_until < time.time() + 16 * 60
