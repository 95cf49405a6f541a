"""The periodic resync: drift repaired or reported, orphans kept or deleted, and
metrics the connector did not create left alone."""

import pytest
import requests
from django.urls import reverse

from connector.metrics.models import MappingStatus, MetricMapping
from connector.sources.models import SourceEvent
from connector.sync.models import Action, DriftPolicy, OrphanPolicy, RemoteMetric, SyncItem
from connector.sync.resync import resync
from connector.sync.selectors import sync_settings
from connector.sync.services import sync_run_create
from tenants.scope import tenant_scope
from tests.sync.conftest import apply_plan, connect_workspace, make_events, sandbox_metrics
from tests.sync.test_engine import run_all


def synced(workspace, admin, count):
    events = make_events(workspace, count, numeric_every=0)
    apply_plan(workspace, admin.user, events)
    run_all(workspace)
    with tenant_scope(workspace):
        return list(MetricMapping.objects.order_by("metric_key"))


def ld_call(ld, method, path, **kwargs):
    token = ld.mint_token("writer")
    response = requests.request(
        method, f"{ld.base_url}{path}", headers={"Authorization": token}, timeout=5, **kwargs
    )
    assert response.status_code < 300, response.text
    return response


def drift_by_hand(ld, *, renamed, deleted):
    """Someone renames one of our metrics in LaunchDarkly and deletes another (which
    LaunchDarkly allows only once it is archived: contract MET-DELETE-1)."""
    ld_call(
        ld,
        "PATCH",
        f"/api/v2/metrics/default/{renamed.metric_key}",
        json=[{"op": "replace", "path": "/name", "value": "Renamed by hand"}],
    )
    archive_by_hand(ld, deleted)
    ld_call(ld, "DELETE", f"/api/v2/metrics/default/{deleted.metric_key}")


def archive_by_hand(ld, mapping, archived=True):
    ld_call(
        ld,
        "PATCH",
        f"/api/v2/metrics/default/{mapping.metric_key}",
        json=[{"op": "replace", "path": "/archived", "value": archived}],
    )


def make_by_hand(ld, count):
    """Metrics someone made in LaunchDarkly, not through the connector."""
    for i in range(count):
        ld_call(
            ld,
            "POST",
            "/api/v2/metrics/default",
            json={
                "key": f"hand-made-{i}",
                "name": f"Hand made {i}",
                "kind": "custom",
                "eventKey": f"hand_{i}",
                "isNumeric": False,
            },
        )


def status_page(client_of, user, workspace):
    """The status page's text, white space folded as a browser shows it."""
    body = client_of(user).get(reverse("sync:status", args=[workspace.slug])).content.decode()
    return " ".join(body.split())


def set_policy(workspace, **policy):
    with tenant_scope(workspace):
        settings_row = sync_settings()
        for name, value in policy.items():
            setattr(settings_row, name, value)
        settings_row.save()


@pytest.mark.django_db
def test_resync__changed_and_deleted_in_launchdarkly__reported(
    connected, workspace, admin, ld, client_of
):
    first, second, third = synced(workspace, admin, 3)
    drift_by_hand(ld, renamed=first, deleted=second)

    with tenant_scope(workspace):
        report = resync()
        statuses = dict(MetricMapping.objects.values_list("metric_key", "status"))
        detail = MetricMapping.objects.get(pk=first.pk).status_detail

    assert report.changed == [first.metric_key] and report.deleted == [second.metric_key]
    assert statuses == {
        first.metric_key: MappingStatus.DRIFTED,
        second.metric_key: MappingStatus.DRIFTED,
        third.metric_key: MappingStatus.SYNCED,
    }
    assert "Renamed by hand" in detail
    assert report.repair_run is None  # reporting changes nothing in LaunchDarkly
    assert len(sandbox_metrics(ld)) == 2
    page = status_page(client_of, admin, workspace)
    assert "2 metrics in the project; of ours, 1 changed, 0 archived and 1 deleted there" in page


@pytest.mark.django_db
def test_resync__repair_policy__launchdarkly_set_back(connected, workspace, admin, ld):
    first, second = synced(workspace, admin, 2)
    set_policy(workspace, drift_policy=DriftPolicy.REPAIR)
    drift_by_hand(ld, renamed=first, deleted=second)

    with tenant_scope(workspace):
        report = resync()
    run_all(workspace)

    assert report.repair_run is not None
    metrics = {m["key"]: m for m in sandbox_metrics(ld)}
    assert set(metrics) == {first.metric_key, second.metric_key}
    assert metrics[first.metric_key]["name"] == first.name
    with tenant_scope(workspace):
        assert set(MetricMapping.objects.values_list("status", flat=True)) == {"synced"}
        assert resync().changed == []  # and a second resync finds nothing


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("policy", "left_in_ld", "archived_in_ld"),
    [(OrphanPolicy.KEEP, 2, 0), (OrphanPolicy.ARCHIVE, 2, 1), (OrphanPolicy.DELETE, 1, 0)],
)
def test_resync__event_removed_at_source__orphan_kept_archived_or_deleted(
    connected, workspace, admin, ld, policy, left_in_ld, archived_in_ld
):
    first, _ = synced(workspace, admin, 2)
    set_policy(workspace, orphan_policy=policy)
    from django.utils import timezone

    with tenant_scope(workspace):
        SourceEvent.objects.filter(pk=first.source_event_id).update(removed_at=timezone.now())
        report = resync()
    run_all(workspace)

    assert report.orphaned == [first.metric_key]
    assert len(sandbox_metrics(ld)) == left_in_ld
    assert sum(bool(m.get("archived")) for m in sandbox_metrics(ld)) == archived_in_ld
    with tenant_scope(workspace):
        status = MetricMapping.objects.get(pk=first.pk).status
        deletes = SyncItem.objects.filter(action=Action.DELETE).count()
    expected = MappingStatus.DELETED if policy == OrphanPolicy.DELETE else MappingStatus.ORPHANED
    assert status == expected and deletes == (1 if policy == OrphanPolicy.DELETE else 0)


@pytest.mark.django_db
def test_resync__foreign_metrics__never_touched_and_snapshot_paginated(
    connected, workspace, admin, ld
):
    synced(workspace, admin, 1)
    set_policy(workspace, drift_policy=DriftPolicy.REPAIR, orphan_policy=OrphanPolicy.DELETE)
    make_by_hand(ld, 55)  # more than one page of 50
    before = {m["key"]: m["_version"] for m in sandbox_metrics(ld)}

    with tenant_scope(workspace):
        report = resync()
        snapshot = RemoteMetric.objects.count()
    run_all(workspace)

    assert report.remote_metrics == 56 and snapshot == 56
    assert report.changed == report.deleted == report.orphaned == []
    assert {m["key"]: m["_version"] for m in sandbox_metrics(ld)} == before


@pytest.mark.django_db
def test_resync__account_budget_spent__stops_listing_instead_of_429(
    client_of, workspace, admin, ld_with
):
    # A day-long window: its reset stays far away whatever the clock says.
    ld = ld_with(rate_window_s=86_400)
    connect_workspace(client_of(admin), workspace, ld)
    make_by_hand(ld, 55)  # two pages
    ld.set_limits(route_per_10s=1)  # one listing call left for the account
    log_from = ld.requests_since(0)[-1]["seq"]

    with tenant_scope(workspace):
        report = resync()

    listings = [
        e for e in ld.requests_since(log_from) if e["path"].startswith("/api/v2/metrics/default?")
    ]
    # The first page's headers say the budget is spent: the second page waits for
    # the window (longer than a worker sleeps), so the resync stops and says why.
    assert [e["status"] for e in listings] == [200]
    assert "rate limit leaves no room until" in report.skipped
    with tenant_scope(workspace):
        assert RemoteMetric.objects.count() == 0  # nothing half-refreshed
    page = status_page(client_of, admin, workspace)
    assert "not done: LaunchDarkly&#x27;s rate limit leaves no room until" in page


@pytest.mark.django_db
def test_resync__metric_archived_because_a_file_dropped_it__stays_archived(
    connected, workspace, admin, ld
):
    """A metrics-as-code file that no longer names a metric archives it while its event
    is still in the catalog: it is "archived", not an orphan, and the resync does not
    restore it as it would for an event that came back."""
    first, second = synced(workspace, admin, 2)
    with tenant_scope(workspace):
        sync_run_create(work=[(first, Action.ARCHIVE)], trigger="plan")
    run_all(workspace)
    with tenant_scope(workspace):
        archived = MetricMapping.objects.get(pk=first.pk)
        report = resync()
    run_all(workspace)

    assert archived.status == MappingStatus.ARCHIVED
    assert "no longer in the plan" in archived.status_detail.lower()
    assert report.restored == [] and report.repair_run is None
    held = {m["key"]: m for m in sandbox_metrics(ld)}
    assert held[first.metric_key]["archived"] is True
    assert not held[second.metric_key].get("archived")
