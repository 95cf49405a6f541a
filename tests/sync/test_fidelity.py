"""The sync engine against LaunchDarkly's documented rules, as the sandbox models them
(docs/launchdarkly-contract.md): archive before delete, restore, use blocks archiving,
409 means retry, the maintainer is set after create."""

import pytest
from django.urls import reverse
from django.utils import timezone

from connector.connections.models import LaunchDarklyConnection
from connector.metrics.models import MappingStatus, MetricMapping
from connector.sources.models import SourceEvent
from connector.sync.models import Action, DriftPolicy, ItemStatus, OrphanPolicy
from connector.sync.resync import resync
from tenants.scope import tenant_scope
from tests.sync.conftest import apply_plan, make_events, sandbox_metrics
from tests.sync.test_engine import items, run_all
from tests.sync.test_resync import archive_by_hand, ld_call, set_policy, synced


def remove_at_source(workspace, mapping):
    with tenant_scope(workspace):
        SourceEvent.objects.filter(pk=mapping.source_event_id).update(removed_at=timezone.now())


def back_at_source(workspace, mapping):
    with tenant_scope(workspace):
        SourceEvent.objects.filter(pk=mapping.source_event_id).update(removed_at=None)


def metric_in_ld(ld, key):
    return {m["key"]: m for m in sandbox_metrics(ld)}[key]


def mapping_of(workspace, mapping):
    with tenant_scope(workspace):
        return MetricMapping.objects.get(pk=mapping.pk)


@pytest.mark.django_db
def test_orphan__archived_by_default_then_restored_when_its_event_returns(
    connected, workspace, admin, ld
):
    """Contract MET-ARCHIVE-1 and MET-ARCHIVE-2: archiving is the default for an orphan;
    the event's return un-archives the same metric (nothing new is created)."""
    (first,) = synced(workspace, admin, 1)
    remove_at_source(workspace, first)
    with tenant_scope(workspace):
        resync()
    run_all(workspace)

    archived = metric_in_ld(ld, first.metric_key)
    assert archived["archived"] is True
    assert mapping_of(workspace, first).status == MappingStatus.ORPHANED
    assert "Archived in LaunchDarkly" in mapping_of(workspace, first).status_detail

    back_at_source(workspace, first)
    with tenant_scope(workspace):
        report = resync()
    run_all(workspace)

    assert report.restored == [first.metric_key]
    restored = metric_in_ld(ld, first.metric_key)
    assert restored["archived"] is False and restored["_id"] == archived["_id"]
    assert len(sandbox_metrics(ld)) == 1
    assert mapping_of(workspace, first).status == MappingStatus.SYNCED
    with tenant_scope(workspace):
        assert resync().restored == []  # and nothing more to do


@pytest.mark.django_db
def test_orphan_in_an_active_experiment__not_archived_and_says_why(connected, workspace, admin, ld):
    """Contract MET-ARCHIVE-1, MET-USAGE-1: LaunchDarkly refuses to archive a metric in
    an active experiment, so the resync asks nothing and says why."""
    (first,) = synced(workspace, admin, 1)
    ld.set_metric_usage("default", first.metric_key, experiments=1, active_experiments=1)
    remove_at_source(workspace, first)
    with tenant_scope(workspace):
        report = resync()
    run_all(workspace)

    assert report.delete_run is None
    assert metric_in_ld(ld, first.metric_key)["archived"] is False
    detail = mapping_of(workspace, first).status_detail
    assert "In use by 1 active experiment, so it is archived once no longer used" in detail


@pytest.mark.django_db
def test_delete_policy__a_metric_an_experiment_used_is_archived_not_deleted(
    connected, workspace, admin, ld
):
    """Contract MET-DELETE-1: only archived metrics that no experiment used can be
    deleted; the delete policy archives the others and says so."""
    used, unused = synced(workspace, admin, 2)
    set_policy(workspace, orphan_policy=OrphanPolicy.DELETE)
    ld.set_metric_usage("default", used.metric_key, experiments=2)  # over, not active
    remove_at_source(workspace, used)
    remove_at_source(workspace, unused)
    with tenant_scope(workspace):
        resync()
    run_all(workspace)

    left = {m["key"]: m for m in sandbox_metrics(ld)}
    assert set(left) == {used.metric_key} and left[used.metric_key]["archived"] is True
    assert mapping_of(workspace, unused).status == MappingStatus.DELETED
    kept = mapping_of(workspace, used)
    assert kept.status == MappingStatus.ORPHANED
    assert "Archived, not deleted: LaunchDarkly keeps metrics that an experiment used" in (
        kept.status_detail
    )


@pytest.mark.django_db
def test_resync__archived_by_a_person__not_deleted_and_not_undone(connected, workspace, admin, ld):
    """Contract MET-ARCHIVE-1: an archived metric is still there; the resync neither
    calls it deleted nor repairs it, even with the repair policy."""
    first, second = synced(workspace, admin, 2)
    set_policy(workspace, drift_policy=DriftPolicy.REPAIR)
    archive_by_hand(ld, first)
    with tenant_scope(workspace):
        report = resync()
    run_all(workspace)

    assert report.deleted == [] and report.archived == [first.metric_key]
    assert report.repair_run is None
    assert metric_in_ld(ld, first.metric_key)["archived"] is True
    assert mapping_of(workspace, first).status == MappingStatus.ARCHIVED
    assert mapping_of(workspace, second).status == MappingStatus.SYNCED

    archive_by_hand(ld, first, archived=False)  # un-archived by the person again
    with tenant_scope(workspace):
        resync()
    assert mapping_of(workspace, first).status == MappingStatus.SYNCED


@pytest.mark.django_db
def test_update__one_concurrent_change__re_read_re_diffed_and_applied(
    connected, workspace, admin, ld
):
    """Contract MET-409-1: a 409 optimistic_locking_error is retried at once after a
    fresh read; the result is ours, over the concurrent edit."""
    (first,) = synced(workspace, admin, 1)
    with tenant_scope(workspace):
        MetricMapping.objects.filter(pk=first.pk).update(name="Renamed by the plan")
        mapping = MetricMapping.objects.get(pk=first.pk)
        from connector.sync.services import sync_run_create

        sync_run_create(work=[(mapping, Action.UPDATE)], trigger="update")
    ld.set_race("default", first.metric_key, count=1)
    run_all(workspace)

    item = items(workspace)[-1]
    assert item.status == ItemStatus.DONE, item.error_message
    assert "after 1 concurrent change" in item.note
    metric = metric_in_ld(ld, first.metric_key)
    assert metric["name"] == "Renamed by the plan"
    assert metric["_version"] == 3  # the concurrent edit, then ours


@pytest.mark.django_db
def test_update__concurrent_changes_that_keep_coming__backs_off_to_retry_later(
    connected, workspace, admin, ld
):
    """Contract MET-409-1: a bounded number of immediate retries, then the item waits
    with backoff (retrying), never failing for good on a 409."""
    (first,) = synced(workspace, admin, 1)
    with tenant_scope(workspace):
        MetricMapping.objects.filter(pk=first.pk).update(name="Renamed by the plan")
        mapping = MetricMapping.objects.get(pk=first.pk)
        from connector.sync.services import sync_run_create

        sync_run_create(work=[(mapping, Action.UPDATE)], trigger="update")
    ld.set_race("default", first.metric_key, count=10)
    run_all(workspace)

    item = items(workspace)[-1]
    assert item.status == ItemStatus.RETRYING
    assert (item.last_http_status, item.error_code) == (409, "optimistic_locking_error")
    patches = [
        e for e in ld.requests_since(0) if e["method"] == "PATCH" and first.metric_key in e["path"]
    ]
    assert len(patches) == 3


def connect_with_service_token(client, workspace, ld):
    token = ld.mint_token("writer", service=True)
    client.post(
        reverse("connections:api_token", args=[workspace.slug]),
        {"instance": "commercial", "token": token},
    )
    client.post(reverse("connections:project", args=[workspace.slug]), {"project_key": "default"})
    return LaunchDarklyConnection.objects.unscoped().get(tenant=workspace)


@pytest.mark.django_db
def test_service_token__workspace_maintainer__set_after_create_and_checked_by_resync(
    client_of, workspace, admin, ld
):
    """Contract MET-MAINT-1: LaunchDarkly ignores maintainerId on create; the connector
    sets it with an update. A service token has no member, so the workspace names one;
    the resync reports a maintainer changed by hand."""
    connection = connect_with_service_token(client_of(admin), workspace, ld)
    assert connection.service_token and connection.member_id == ""
    owner = ld.state()["accounts"][0]["members"][0]["id"]
    set_policy(workspace, maintainer_id=owner)

    events = make_events(workspace, 1, numeric_every=0)
    apply_plan(workspace, admin.user, events)
    run_all(workspace)

    (item,) = items(workspace)
    assert item.status == ItemStatus.DONE and "maintainer set" in item.note
    metric = metric_in_ld(ld, item.mapping.metric_key)
    assert metric["maintainerId"] == owner

    ld_call(
        ld,
        "PATCH",
        f"/api/v2/metrics/default/{item.mapping.metric_key}",
        json=[{"op": "remove", "path": "/maintainerId"}],
    )
    with tenant_scope(workspace):
        report = resync()
    assert report.changed == [item.mapping.metric_key]
    detail = mapping_of(workspace, item.mapping).status_detail
    assert f"maintainer: we want {owner}, LaunchDarkly has nobody" in detail


@pytest.mark.django_db
def test_unregistered_randomization_unit__launchdarkly_refuses__failed_with_its_message(
    connected, workspace, admin, ld
):
    """Contract EXP-3: a unit that is a context kind but not registered in the
    project's experimentation settings gets LaunchDarkly's 400; the item fails with
    that message, not retried."""
    events = make_events(workspace, 1, numeric_every=0)
    apply_plan(workspace, admin.user, events, randomization_units=("organization",))
    run_all(workspace)

    (item,) = items(workspace)
    assert (item.status, item.last_http_status) == (ItemStatus.FAILED, 400)
    assert 'Randomization unit "organization" not found in project settings' in (item.error_message)
    assert sandbox_metrics(ld) == []
