"""Metric groups brought to LaunchDarkly by the sync engine: after their metrics, once
each, a same-key group made by someone else a conflict, and a group an experiment used
kept by LaunchDarkly and left in place. The first tests run real Celery workers; the
rest run the same services in this process (tests/sync/test_engine.py's way)."""

from __future__ import annotations

import threading

import pytest
import requests
from django.db import connection

from connector.metrics.desired import MANAGED_TAG
from connector.metrics.groups import group_body
from connector.metrics.models import GroupKind, MappingStatus, MetricGroup, MetricMapping
from connector.sync import services
from connector.sync.models import (
    FINISHED_STATUSES,
    Action,
    ItemStatus,
    SyncItem,
    Trigger,
)
from connector.sync.tasks import sync_item
from tenants.scope import tenant_scope
from tests.factories import MetricGroupFactory
from tests.sync.conftest import apply_plan, make_events
from tests.sync.test_engine import run_all as run_ready
from tests.workers import running_worker, wait_until

ENV = {"SYNC_STALE_CLAIM_S": "5", "SYNC_BACKOFF_BASE_S": "0.2", "SYNC_BACKOFF_CAP_S": "2"}
FUNNEL = "signup-funnel"


def funnel_of(events, name="Signup funnel"):
    """The plan's group spec for a funnel of these events' conversion metrics."""
    return {"name": name, "kind": "funnel", "metrics": [{"event": e.key} for e in events]}


def workers(ld):
    return running_worker(pool="threads", concurrency=4, LAUNCHDARKLY_BASE_URL=ld.base_url, **ENV)


def finished(run) -> bool:
    unfinished = SyncItem.objects.unscoped().filter(run=run).exclude(status__in=FINISHED_STATUSES)
    return not unfinished.exists()


def group_items(workspace):
    with tenant_scope(workspace):
        return list(SyncItem.objects.filter(group__isnull=False).order_by("id"))


def the_group(workspace, key=FUNNEL) -> MetricGroup:
    with tenant_scope(workspace):
        return MetricGroup.objects.get(key=key)


def created(ld, kind):
    """The creates LaunchDarkly accepted, in order: `kind` "group" or "metric"."""
    return [
        r
        for r in ld.requests_since(0)
        if r["method"] == "POST"
        and r["status"] == 201
        and ("/metric-groups" in r["path"]) == (kind == "group")
    ]


def group_calls(ld, method=None):
    return [
        r
        for r in ld.requests_since(0)
        if "/metric-groups" in r["path"] and (method is None or r["method"] == method)
    ]


def ld_post_group(ld, body):
    answer = requests.post(
        f"{ld.base_url}/api/v2/projects/default/metric-groups",
        json=body,
        headers={"Authorization": ld.mint_token("writer"), "LD-API-Version": "beta"},
        timeout=5,
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


def ld_post_metric(ld, key):
    answer = requests.post(
        f"{ld.base_url}/api/v2/metrics/default",
        json={"key": key, "name": key, "kind": "custom", "eventKey": key, "isNumeric": False},
        headers={"Authorization": ld.mint_token("writer")},
        timeout=5,
    )
    assert answer.status_code == 201, answer.text


# --- through Celery workers -------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_group_sync__three_metrics_and_their_funnel_in_one_run__group_once_after_them(
    connected, workspace, admin, ld
):
    """Contract GRP-2, GRP-3, GRP-5: LaunchDarkly refuses a group of metrics it does not
    have, so the funnel planned with its metrics waits for them (its waits are not
    counted as attempts) and is created once, after the last of them."""
    events = make_events(workspace, 3, numeric_every=0)
    with workers(ld):
        run = apply_plan(workspace, admin.user, events, groups=(funnel_of(events),))
        assert wait_until(lambda: finished(run), timeout=90, interval=0.2)

    with tenant_scope(workspace):
        statuses = list(SyncItem.objects.filter(run=run).values_list("status", flat=True))
        metric_keys = list(
            MetricMapping.objects.order_by("source_event__key").values_list("metric_key", flat=True)
        )
    assert statuses == [ItemStatus.DONE] * 4
    (group_post,) = created(ld, "group")
    assert group_post["seq"] > max(r["seq"] for r in created(ld, "metric"))
    (item,) = group_items(workspace)
    assert item.attempts == 1 and item.note == "Created." and item.last_http_status == 201
    group = the_group(workspace)
    assert group.status == MappingStatus.SYNCED and group.managed
    assert group.applied_hash == group.desired_hash and group.ld_version == 1
    (in_ld,) = ld.metric_groups()
    assert in_ld["key"] == FUNNEL and in_ld["kind"] == "funnel"
    assert [m["key"] for m in in_ld["metrics"]] == metric_keys
    assert MANAGED_TAG in in_ld["tags"]


@pytest.mark.django_db(transaction=True)
def test_group_sync__same_item_delivered_five_times__one_group(connected, workspace, admin, ld):
    """Contract GRP-2: a second create would be a 409; the item's claim lets exactly one
    of the deliveries call LaunchDarkly, the others record nothing."""
    events = make_events(workspace, 2, numeric_every=0)
    with workers(ld):
        first = apply_plan(workspace, admin.user, events)
        assert wait_until(lambda: finished(first), timeout=60, interval=0.2)
        with tenant_scope(workspace):
            mappings = list(MetricMapping.objects.order_by("metric_key"))
            group = MetricGroupFactory(
                key=FUNNEL,
                maintainer_id=connected.member_id,
                metrics=MetricGroupFactory.members(mappings),
            )
            run = services.sync_run_create(work=[(group, Action.CREATE)], trigger=Trigger.PLAN)
            (item,) = group_items(workspace)
            for _ in range(4):  # the broker redelivers it (a lost ack, a restarted worker)
                sync_item.delay(workspace.pk, item.pk)
        assert wait_until(lambda: finished(run), timeout=60, interval=0.2)

    item.refresh_from_db()
    assert item.status == ItemStatus.DONE and item.attempts == 1
    assert len(group_calls(ld, "POST")) == 1 and len(ld.metric_groups()) == 1
    assert the_group(workspace).status == MappingStatus.SYNCED


@pytest.mark.django_db(transaction=True)
def test_group_sync__same_key_group_with_other_fields__conflict_with_difference(
    connected, workspace, admin, ld
):
    """Contract GRP-2: someone made a group with the funnel's key; the create meets a
    409, reads it back, and shows how it differs instead of changing it."""
    for key in ("hand-a", "hand-b"):
        ld_post_metric(ld, key)
    ld_post_group(
        ld,
        {
            "key": FUNNEL,
            "name": "Made by hand",
            "kind": "funnel",
            "maintainerId": connected.member_id,
            "tags": [],
            "metrics": [
                {"key": "hand-a", "nameInGroup": "A"},
                {"key": "hand-b", "nameInGroup": "B"},
            ],
        },
    )
    events = make_events(workspace, 2, numeric_every=0)
    with workers(ld):
        run = apply_plan(workspace, admin.user, events, groups=(funnel_of(events),))
        assert wait_until(lambda: finished(run), timeout=60, interval=0.2)

    (item,) = group_items(workspace)
    assert item.status == ItemStatus.CONFLICT and item.last_http_status == 409
    assert "exists in LaunchDarkly with other fields" in item.error_message
    assert 'name: we want "Signup funnel", LaunchDarkly has "Made by hand"' in item.error_message
    group = the_group(workspace)
    assert group.status == MappingStatus.CONFLICT and not group.managed
    (in_ld,) = ld.metric_groups()
    assert in_ld["name"] == "Made by hand" and in_ld["_version"] == 1  # left as it was
    assert group_calls(ld, "PATCH") == []


@pytest.mark.django_db(transaction=True)
def test_group_sync__delete_of_a_group_an_experiment_used__kept_and_explained(
    connected, workspace, admin, ld
):
    """Contract GRP-11, GRP-3: LaunchDarkly keeps a group connected to an experiment.
    The delete reads its use first (experimentCount), sends no delete, and says so; the
    group is left in place and no longer the connector's."""
    events = make_events(workspace, 2, numeric_every=0)
    with workers(ld):
        run = apply_plan(workspace, admin.user, events, groups=(funnel_of(events),))
        assert wait_until(lambda: finished(run), timeout=60, interval=0.2)
        ld.set_metric_group_usage(FUNNEL, experiments=1)
        with tenant_scope(workspace):
            group = MetricGroup.objects.get(key=FUNNEL)
            retire = services.sync_run_create(work=[(group, Action.DELETE)], trigger=Trigger.PLAN)
        assert wait_until(lambda: finished(retire), timeout=60, interval=0.2)

    with tenant_scope(workspace):
        item = SyncItem.objects.get(run=retire)
    assert item.status == ItemStatus.DONE
    assert item.note == "Connected to 1 experiment: LaunchDarkly keeps it; left in place."
    assert group_calls(ld, "DELETE") == []
    assert "expand=experimentCount" in group_calls(ld, "GET")[-1]["path"]
    assert [g["key"] for g in ld.metric_groups()] == [FUNNEL]
    group = the_group(workspace)
    assert not group.managed and group.applied_hash == ""
    assert group.status_detail == item.note


# --- in this process ------------------------------------------------------------------------


def run_all(workspace):
    """Run every item in this process until all are finished; items waiting for a
    later attempt (a group for its metrics) get it at once, as if the wait had passed."""
    for _ in range(20):
        run_ready(workspace)
        with tenant_scope(workspace):
            waiting = SyncItem.objects.filter(status=ItemStatus.RETRYING)
            if not waiting.update(next_attempt_at=None):
                return


def synced_metrics(workspace, admin, count=3):
    events = make_events(workspace, count, numeric_every=0)
    apply_plan(workspace, admin.user, events)
    run_all(workspace)
    with tenant_scope(workspace):
        return list(MetricMapping.objects.order_by("metric_key"))


def group_run(workspace, group, action):
    with tenant_scope(workspace):
        return services.sync_run_create(work=[(group, action)], trigger=Trigger.PLAN)


def funnel_group(workspace, connected, mappings, **fields):
    with tenant_scope(workspace):
        return MetricGroupFactory(
            key=FUNNEL,
            maintainer_id=connected.member_id,
            metrics=MetricGroupFactory.members(mappings),
            **fields,
        )


@pytest.mark.django_db
def test_group_item__its_metrics_not_yet_synced__waits_uncounted_then_created(
    connected, workspace, admin, ld
):
    """Contract GRP-5: nothing is sent for the group while its metrics are on their way."""
    events = make_events(workspace, 2, numeric_every=0)
    apply_plan(workspace, admin.user, events, groups=(funnel_of(events),))
    with tenant_scope(workspace):
        item = SyncItem.objects.get(group__isnull=False)
        SyncItem.objects.filter(pk=item.pk).update(status=ItemStatus.QUEUED)

        assert services.item_run(item_id=item.pk) == ItemStatus.RETRYING

    item.refresh_from_db()
    assert item.attempts == 0 and item.next_attempt_at is not None
    assert item.error_message.startswith("Waiting for its metrics to be in LaunchDarkly first:")
    assert group_calls(ld) == []

    run_all(workspace)

    item.refresh_from_db()
    assert item.status == ItemStatus.DONE and item.attempts == 1
    assert len(ld.metric_groups()) == 1


@pytest.mark.django_db
def test_group_item__a_metric_failed_for_good__fails_saying_which(connected, workspace, admin, ld):
    """Contract GRP-5: a member that no item will bring to LaunchDarkly makes the group
    fail at once, naming it, instead of waiting for ever or sending a doomed create."""
    mappings = synced_metrics(workspace, admin, 2)
    with tenant_scope(workspace):
        MetricMapping.objects.filter(pk=mappings[1].pk).update(status=MappingStatus.FAILED)
    group = funnel_group(workspace, connected, mappings)
    group_run(workspace, group, Action.CREATE)

    run_all(workspace)

    (item,) = group_items(workspace)
    assert item.status == ItemStatus.FAILED
    assert f"{mappings[1].metric_key} (Failed)" in item.error_message
    assert "retry the group" in item.error_message
    assert the_group(workspace).status == MappingStatus.FAILED
    assert group_calls(ld) == []


@pytest.mark.django_db
def test_group_item__created_before_but_never_recorded__adopted_not_duplicated(
    connected, workspace, admin, ld
):
    """Contract GRP-2, GRP-3: the answer to an earlier create was lost; the retry meets
    its own group (409), reads it back, finds the same managed fields: done."""
    mappings = synced_metrics(workspace, admin)
    group = funnel_group(workspace, connected, mappings)
    ld_post_group(ld, group_body(group))
    group_run(workspace, group, Action.CREATE)

    run_all(workspace)

    (item,) = group_items(workspace)
    assert item.status == ItemStatus.DONE and item.note == "Adopted."
    assert len(ld.metric_groups()) == 1 and group_calls(ld, "PATCH") == []
    group.refresh_from_db()
    assert group.managed and group.applied_hash == group.desired_hash


@pytest.mark.django_db(transaction=True)
def test_group_item__ten_concurrent_deliveries__one_create(connected, workspace, admin, ld):
    mappings = synced_metrics(workspace, admin, 2)
    group = funnel_group(workspace, connected, mappings)
    group_run(workspace, group, Action.CREATE)
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
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert results.count(ItemStatus.DONE) == 1 and results.count(None) == 9
    assert len(group_calls(ld, "POST")) == 1


@pytest.mark.django_db
def test_group_item__update__patches_what_changed_then_nothing(connected, workspace, admin, ld):
    """Contract GRP-10, GRP-3: an update patches the changed fields only (the
    maintainer, answered as {key, kind, _member}, is not re-sent); once in
    LaunchDarkly as wanted, another update sends nothing."""
    mappings = synced_metrics(workspace, admin)
    group = funnel_group(workspace, connected, mappings)
    group_run(workspace, group, Action.CREATE)
    run_all(workspace)
    with tenant_scope(workspace):
        group.refresh_from_db()
        group.name = "Renamed funnel"
        group.metrics = list(reversed(group.metrics))
        group.save()
    group_run(workspace, group, Action.UPDATE)
    run_all(workspace)
    group_run(workspace, group, Action.UPDATE)
    run_all(workspace)

    _, update, again = group_items(workspace)
    assert update.status == ItemStatus.DONE and update.note == "Updated: name, metrics."
    (patch,) = group_calls(ld, "PATCH")
    assert patch["status"] == 200
    (in_ld,) = ld.metric_groups()
    assert in_ld["name"] == "Renamed funnel" and in_ld["_version"] == 2
    assert [m["key"] for m in in_ld["metrics"]] == [m.metric_key for m in reversed(mappings)]
    assert again.status == ItemStatus.DONE and again.note == "Already in LaunchDarkly as wanted."


@pytest.mark.django_db
def test_group_item__update_of_a_group_deleted_there__created_again(
    connected, workspace, admin, ld
):
    mappings = synced_metrics(workspace, admin)
    group = funnel_group(workspace, connected, mappings)
    group_run(workspace, group, Action.CREATE)
    run_all(workspace)
    requests.delete(
        f"{ld.base_url}/api/v2/projects/default/metric-groups/{FUNNEL}",
        headers={"Authorization": ld.mint_token("writer"), "LD-API-Version": "beta"},
        timeout=5,
    ).raise_for_status()

    group_run(workspace, group, Action.UPDATE)
    run_all(workspace)

    assert group_items(workspace)[-1].note == "Created (was missing)."
    assert len(ld.metric_groups()) == 1


@pytest.mark.django_db
def test_group_item__delete__gone_from_launchdarkly_and_marked_deleted(
    connected, workspace, admin, ld
):
    """Contract GRP-11: a group no experiment used is deleted (204); deleting it again
    finds it gone (404), which is the goal reached."""
    mappings = synced_metrics(workspace, admin)
    group = funnel_group(workspace, connected, mappings)
    group_run(workspace, group, Action.CREATE)
    run_all(workspace)
    group.refresh_from_db()
    group_run(workspace, group, Action.DELETE)
    run_all(workspace)
    group_run(workspace, group, Action.DELETE)
    run_all(workspace)

    _, deleted, again = group_items(workspace)
    assert deleted.status == ItemStatus.DONE and deleted.last_http_status == 204
    assert again.note == "Already gone from LaunchDarkly."
    assert ld.metric_groups() == []
    group.refresh_from_db()
    assert group.status == MappingStatus.DELETED and group.applied_hash == ""


@pytest.mark.django_db
def test_group_item__delete_while_a_guarded_rollout_uses_it__conflict_to_retry(
    connected, workspace, admin, ld
):
    """Contract GRP-11: an active guarded rollout blocks the delete only while it runs,
    so the item is a conflict a person retries later, not a group left for good."""
    mappings = synced_metrics(workspace, admin)
    group = funnel_group(workspace, connected, mappings)
    group_run(workspace, group, Action.CREATE)
    run_all(workspace)
    ld.set_metric_group_usage(FUNNEL, experiments=0, active_guarded_rollouts=1)
    group.refresh_from_db()
    group_run(workspace, group, Action.DELETE)
    run_all(workspace)

    item = group_items(workspace)[-1]
    assert item.status == ItemStatus.CONFLICT
    assert "In use by 1 active guarded rollout" in item.error_message
    assert group_calls(ld, "DELETE") == [] and len(ld.metric_groups()) == 1


@pytest.mark.django_db
def test_group_item__delete_of_a_group_not_ours__left_alone(connected, workspace, admin, ld):
    mappings = synced_metrics(workspace, admin)
    group = funnel_group(workspace, connected, mappings)
    ld_post_group(ld, group_body(group))
    group_run(workspace, group, Action.DELETE)  # never created or adopted by us

    run_all(workspace)

    assert group_items(workspace)[-1].note.startswith("Not created or adopted")
    assert len(ld.metric_groups()) == 1


@pytest.mark.django_db
def test_group_item__same_key_but_another_kind__conflict_naming_the_kind(
    connected, workspace, admin, ld
):
    """Contract GRP-10: LaunchDarkly cannot change a group's kind, so an update that
    finds a standard group where ours is a funnel stops and says so."""
    mappings = synced_metrics(workspace, admin)
    group = funnel_group(workspace, connected, mappings)
    standard = {
        **group_body(group),
        "kind": GroupKind.STANDARD,
        "metrics": MetricGroupFactory.members(mappings, kind=GroupKind.STANDARD),
    }
    ld_post_group(ld, standard)
    group_run(workspace, group, Action.UPDATE)

    run_all(workspace)

    item = group_items(workspace)[-1]
    assert item.status == ItemStatus.CONFLICT
    assert "cannot change a group's kind (we want funnel)" in item.error_message
    assert group_calls(ld, "PATCH") == []
