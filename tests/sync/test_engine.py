"""The sync engine, item by item, against the sandbox (in-process: the same services
the Celery tasks call; tests/sync/test_worker.py runs them in real workers)."""

import threading

import pytest
import requests
from django.db import connection

from connector.metrics.desired import MANAGED_TAG, metric_body
from connector.metrics.models import MappingStatus, MetricMapping
from connector.sync import selectors, services
from connector.sync.models import ItemStatus, SyncItem
from tenants.scope import tenant_scope
from tests.sync.conftest import apply_plan, connect_workspace, make_events, sandbox_metrics


def run_all(workspace):
    """Pump and run items in this process until nothing is ready (no worker)."""
    with tenant_scope(workspace):
        for _ in range(1000):
            ready = services.pump()
            if not ready:
                return
            for item_id in ready:
                services.item_run(item_id=item_id)


def items(workspace):
    with tenant_scope(workspace):
        return list(SyncItem.objects.select_related("mapping").order_by("id"))


@pytest.mark.django_db
def test_sync__plan_of_twelve__creates_each_metric_once_tagged(connected, workspace, admin, ld):
    events = make_events(workspace, 12)
    run = apply_plan(workspace, admin.user, events)

    run_all(workspace)

    assert {i.status for i in items(workspace)} == {ItemStatus.DONE}
    metrics = sandbox_metrics(ld)
    assert len(metrics) == 12
    assert all(MANAGED_TAG in m["tags"] for m in metrics)
    numeric = [m for m in metrics if m["isNumeric"]]
    assert len(numeric) == 4 and all(m["unit"] == "ms" for m in numeric)
    with tenant_scope(workspace):
        mappings = MetricMapping.objects.all()
        assert {m.status for m in mappings} == {MappingStatus.SYNCED}
        assert all(m.applied_hash == m.desired_hash and m.managed for m in mappings)
        run.refresh_from_db()
    assert run.finished_at is not None


@pytest.mark.django_db(transaction=True)
def test_sync__item_run_twice_and_ten_times_concurrently__one_metric(
    connected, workspace, admin, ld
):
    events = make_events(workspace, 1, numeric_every=0)
    apply_plan(workspace, admin.user, events)
    with tenant_scope(workspace):
        (item_id,) = services.pump()
    results = []

    def deliver():
        try:
            with tenant_scope(workspace):
                results.append(services.item_run(item_id=item_id))
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with tenant_scope(workspace):
        assert services.item_run(item_id=item_id) is None  # and once more, later

    assert results.count(ItemStatus.DONE) == 1 and results.count(None) == 9
    assert len(sandbox_metrics(ld)) == 1


@pytest.mark.django_db
def test_sync__create_meets_identical_metric__adopted_without_duplicate(
    connected, workspace, admin, ld
):
    events = make_events(workspace, 1, numeric_every=0)
    apply_plan(workspace, admin.user, events)
    with tenant_scope(workspace):
        mapping = MetricMapping.objects.get()
        body = metric_body(mapping, event_key=events[0].key)
    token = ld.mint_token("writer")
    created = requests.post(
        f"{ld.base_url}/api/v2/metrics/default",
        json=body,
        headers={"Authorization": token},
        timeout=5,
    )
    assert created.status_code == 201

    run_all(workspace)

    (item,) = items(workspace)
    assert item.status == ItemStatus.DONE and len(sandbox_metrics(ld)) == 1


@pytest.mark.django_db
def test_sync__create_meets_different_foreign_metric__conflict_with_difference(
    connected, workspace, admin, ld
):
    events = make_events(workspace, 1, numeric_every=0)
    apply_plan(workspace, admin.user, events)
    with tenant_scope(workspace):
        mapping = MetricMapping.objects.get()
    token = ld.mint_token("writer")
    requests.post(
        f"{ld.base_url}/api/v2/metrics/default",
        json={
            "key": mapping.metric_key,
            "name": "Someone else's",
            "kind": "custom",
            "eventKey": "other",
            "isNumeric": False,
            "unitAggregationType": "average",
        },
        headers={"Authorization": token},
        timeout=5,
    )

    run_all(workspace)

    (item,) = items(workspace)
    assert item.status == ItemStatus.CONFLICT
    assert "eventKey" in item.error_message and "Someone else's" in item.error_message
    assert sandbox_metrics(ld)[0]["name"] == "Someone else's"  # never overwritten


@pytest.mark.django_db
def test_sync__changed_mapping__update_patches_only_managed_fields(connected, workspace, admin, ld):
    events = make_events(workspace, 3, numeric_every=0)
    apply_plan(workspace, admin.user, events)
    run_all(workspace)

    second = apply_plan(workspace, admin.user, events, tags=("checkout",))
    run_all(workspace)

    assert {i.action for i in items(workspace) if i.run_id == second.pk} == {"update"}
    metrics = sandbox_metrics(ld)
    assert len(metrics) == 3
    assert all(sorted(m["tags"]) == ["checkout", MANAGED_TAG] for m in metrics)
    assert all(m["_version"] == 2 for m in metrics)


@pytest.mark.django_db
def test_sync__launchdarkly_answers_400__failed_at_once_with_its_message(
    connected, workspace, admin, ld
):
    events = make_events(workspace, 1, numeric_every=0)
    apply_plan(workspace, admin.user, events)
    with tenant_scope(workspace):
        # A randomization unit LaunchDarkly refuses: its 400 must reach the item as is.
        MetricMapping.objects.update(metric_key="Bad Key With Spaces")

    run_all(workspace)

    (item,) = items(workspace)
    assert item.status == ItemStatus.FAILED and item.attempts == 1
    assert item.last_http_status == 400 and item.error_message


@pytest.mark.django_db
def test_sync__server_errors__retried_with_backoff_then_failed(
    connected, workspace, admin, ld, settings
):
    settings.SYNC_MAX_ATTEMPTS = 3
    settings.SYNC_BACKOFF_BASE_S = 0
    events = make_events(workspace, 1, numeric_every=0)
    apply_plan(workspace, admin.user, events)
    ld.set_faults(rate=1, kinds=["503"], routes=["/api/v2/metrics"])

    with tenant_scope(workspace):
        (item_id,) = services.pump()
        assert services.item_run(item_id=item_id) == ItemStatus.RETRYING
    run_all(workspace)

    (item,) = items(workspace)
    assert item.status == ItemStatus.FAILED and item.attempts == 3
    assert "Gave up after 3 attempts" in item.error_message
    ld.set_faults(rate=0, latency_ms=0)
    assert sandbox_metrics(ld) == []


@pytest.mark.django_db
def test_sync__rate_limited__waits_not_fails(client_of, workspace, admin, ld_with, settings):
    # LaunchDarkly's windows are aligned to the clock: a call late in a 10 s window
    # would see it reset at once. A day-long window keeps the reset far away.
    ld = ld_with(rate_window_s=86_400)
    connect_workspace(client_of(admin), workspace, ld)
    settings.SYNC_MAX_INLINE_WAIT_S = 0  # reschedule instead of sleeping in the test
    events = make_events(workspace, 3, numeric_every=0)
    apply_plan(workspace, admin.user, events)
    ld.set_limits(route_per_10s=1)

    run_all(workspace)

    statuses = sorted(i.status for i in items(workspace))
    assert statuses.count(ItemStatus.DONE) == 1
    assert set(statuses) == {ItemStatus.DONE, ItemStatus.WAITING}
    waiting = [i for i in items(workspace) if i.status == ItemStatus.WAITING]
    assert all(i.next_attempt_at and i.attempts == 0 for i in waiting)
    with tenant_scope(workspace):
        progress = selectors.run_progress(run=waiting[0].run)
    assert progress.waiting_until is not None and progress.counts[ItemStatus.WAITING] == 2


@pytest.mark.django_db
def test_sync__token_revoked__connection_needs_reauth_items_paused_then_resumed(
    connected, workspace, admin, ld, client_of
):
    events = make_events(workspace, 4, numeric_every=0)
    apply_plan(workspace, admin.user, events)
    ld.revoke_token(connected.access_token())

    run_all(workspace)

    assert {i.status for i in items(workspace)} == {ItemStatus.PAUSED}
    connected.refresh_from_db()
    assert connected.status == "needs_reauth"

    from django.urls import reverse

    client_of(admin).post(
        reverse("connections:api_token", args=[workspace.slug]),
        {"instance": "commercial", "token": ld.mint_token("writer")},
    )
    assert {i.status for i in items(workspace)} == {ItemStatus.PENDING}
    run_all(workspace)
    assert {i.status for i in items(workspace)} == {ItemStatus.DONE}
    assert len(sandbox_metrics(ld)) == 4


@pytest.mark.django_db
def test_sweeper__claim_of_dead_worker__item_freed_and_finished(
    connected, workspace, admin, ld, settings
):
    settings.SYNC_STALE_CLAIM_S = 0
    events = make_events(workspace, 1, numeric_every=0)
    apply_plan(workspace, admin.user, events)
    with tenant_scope(workspace):
        (item_id,) = services.pump()
        SyncItem.objects.filter(pk=item_id).update(status=ItemStatus.IN_FLIGHT)

    assert services.sweep_stale_claims() == [workspace.pk]
    run_all(workspace)

    assert [i.status for i in items(workspace)] == [ItemStatus.DONE]


@pytest.mark.django_db
def test_disconnect__unfinished_items__cancelled(connected, workspace, admin, ld, client_of):
    from django.urls import reverse

    events = make_events(workspace, 5, numeric_every=0)
    apply_plan(workspace, admin.user, events)

    client_of(admin).post(reverse("connections:disconnect", args=[workspace.slug]))

    assert {i.status for i in items(workspace)} == {ItemStatus.CANCELLED}
    run_all(workspace)
    assert sandbox_metrics(ld) == []


@pytest.mark.django_db
def test_sync__successful_calls__their_http_status_recorded(
    connected, workspace, admin, ld, settings
):
    from django.utils import timezone

    from connector.sources.models import SourceEvent
    from connector.sync.models import OrphanPolicy
    from connector.sync.resync import resync

    settings.SYNC_MAX_ATTEMPTS = 1
    events = make_events(workspace, 3, numeric_every=0)
    ld.set_faults(rate=1, kinds=["503"], routes=["/api/v2/metrics"])
    first = apply_plan(workspace, admin.user, events)
    run_all(workspace)
    assert {(i.status, i.last_http_status) for i in items(workspace)} == {(ItemStatus.FAILED, 503)}

    # Retried once LaunchDarkly is fine: the create's 201 replaces the 503.
    ld.set_faults(rate=0, latency_ms=0)
    with tenant_scope(workspace):
        services.sync_run_retry_failed(run=first, actor=admin.user)
    run_all(workspace)
    assert {(i.status, i.last_http_status) for i in items(workspace)} == {(ItemStatus.DONE, 201)}

    # A changed mapping is patched: 200.
    second = apply_plan(workspace, admin.user, events, tags=("checkout",))
    run_all(workspace)
    assert {i.last_http_status for i in items(workspace) if i.run_id == second.pk} == {200}

    # An event removed at the source, with orphans deleted: 204.
    with tenant_scope(workspace):
        row = selectors.sync_settings()
        row.orphan_policy = OrphanPolicy.DELETE
        row.save()
        SourceEvent.objects.filter(pk=events[0].pk).update(removed_at=timezone.now())
        resync()
    run_all(workspace)
    (deleted,) = [i for i in items(workspace) if i.action == "delete"]
    assert (deleted.status, deleted.last_http_status) == (ItemStatus.DONE, 204)
    assert len(sandbox_metrics(ld)) == 2
