"""The metric design scenario of issue 16, end to end: a plan of 200 events with
metric sets, filtered metrics and two funnels, applied by Celery workers against the
sandbox; every object exactly once in LaunchDarkly, the resync finds no drift, and a
second apply changes nothing."""

from __future__ import annotations

from collections import Counter

import pytest
import requests

from connector.metrics.models import MappingStatus, MetricGroup, MetricMapping, MetricPlan
from connector.planner.actions import PlanAction
from connector.planner.plans import Choices, plan_apply, plan_compute
from connector.sources.models import SourceEvent
from connector.sync.models import FINISHED_STATUSES, ItemStatus, SyncItem
from connector.sync.resync import resync
from tenants.scope import tenant_scope
from tests.sync.conftest import make_events, sandbox_metrics
from tests.workers import running_sweeper, running_worker, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

ENV = {"SYNC_STALE_CLAIM_S": "5", "SYNC_BACKOFF_BASE_S": "0.2", "SYNC_BACKOFF_CAP_S": "2"}
PROPERTIES = {"plan": "string", "amount": "number"}
FILTERED = [f"event_{i:05d}" for i in range(1, 200, 10)]  # 20 conversion events


def _choices() -> Choices:
    return Choices(
        metric_set=True,
        filtered=tuple((key, "plan = pro and amount > 100") for key in FILTERED),
        groups=(
            {
                "name": "Signup funnel",
                "kind": "funnel",
                "metrics": [
                    {"event": "event_00001"},
                    {"event": "event_00002"},
                    {"event": "event_00003"},
                ],
            },
            {
                "name": "Pro checkout funnel",
                "kind": "funnel",
                "metrics": [
                    {
                        "event": "event_00011",
                        "filter": "plan = pro and amount > 100",
                        "name": "Pro view",
                    },
                    {"event": "event_00012", "name": "Cart"},
                    {"event": "event_00013", "name": "Paid"},
                ],
            },
        ),
    )


def _plan(workspace, user, events) -> MetricPlan:
    with tenant_scope(workspace):
        return MetricPlan.objects.create(
            created_by=user,
            selection={"ids": [e.pk for e in events]},
            choices=_choices().to_json(),
        )


def _sandbox_groups(ld) -> list[dict]:
    answer = requests.get(
        f"{ld.base_url}/api/v2/projects/default/metric-groups",
        headers={"Authorization": ld.mint_token("reader"), "LD-API-Version": "beta"},
        timeout=10,
    )
    answer.raise_for_status()
    return answer.json()["items"]


def _finished(run) -> bool:
    return (
        not SyncItem.objects.unscoped()
        .filter(run=run)
        .exclude(status__in=FINISHED_STATUSES)
        .exists()
    )


def test_metric_design__200_events_sets_filters_two_funnels__exactly_once(
    connected, workspace, admin, ld
):
    events = make_events(workspace, 200, numeric_every=5)
    with tenant_scope(workspace):
        SourceEvent.objects.update(properties=PROPERTIES)
    plan = _plan(workspace, admin.user, events)
    with tenant_scope(workspace):
        computed = plan_compute(plan=plan)
        run = plan_apply(plan=plan, actor=admin.user)
    # 160 conversion events: rate + count; 40 numeric: mean + p90; 20 filtered: 2 each.
    assert computed.counts[PlanAction.CREATE] == 160 * 2 + 40 * 2 + 20 * 2
    assert computed.counts[PlanAction.BLOCKED] == 0
    assert computed.group_counts[PlanAction.CREATE] == 2

    env = {"LAUNCHDARKLY_BASE_URL": ld.base_url, **ENV}
    with running_worker(pool="threads", concurrency=8, **env), running_sweeper(1.0, **env):
        assert wait_until(lambda: _finished(run), timeout=240, interval=0.5)

    statuses = Counter(SyncItem.objects.unscoped().filter(run=run).values_list("status", flat=True))
    assert statuses == {ItemStatus.DONE: 442}, statuses
    metrics = sandbox_metrics(ld)
    keys = Counter(m["key"] for m in metrics)
    assert len(keys) == 440 and set(keys.values()) == {1}
    filtered = [m for m in metrics if m.get("filters")]
    assert len(filtered) == 40
    groups = {g["key"]: g for g in _sandbox_groups(ld)}
    assert set(groups) == {"signup-funnel", "pro-checkout-funnel"}
    assert [m["nameInGroup"] for m in groups["pro-checkout-funnel"]["metrics"]] == [
        "Pro view",
        "Cart",
        "Paid",
    ]
    # Every create LaunchDarkly accepted made an object that is there now: none twice.
    created = Counter(
        "group" if "metric-groups" in r["path"] else "metric"
        for r in ld.requests_since(0)
        if r["method"] == "POST" and r["status"] == 201
    )
    assert created == {"metric": 440, "group": 2}

    with tenant_scope(workspace):
        assert set(MetricMapping.objects.values_list("status", flat=True)) == {MappingStatus.SYNCED}
        assert set(MetricGroup.objects.values_list("status", flat=True)) == {MappingStatus.SYNCED}
        report = resync()
        assert (report.changed, report.deleted, report.repair_run) == ([], [], None)
        assert not report.groups_changed and not report.groups_deleted

        again = plan_compute(plan=_plan(workspace, admin.user, events))
        assert again.counts[PlanAction.UNCHANGED] == 440
        assert again.group_counts[PlanAction.UNCHANGED] == 2
        assert plan_apply(plan=_plan(workspace, admin.user, events), actor=admin.user) is None
    assert len(sandbox_metrics(ld)) == 440
