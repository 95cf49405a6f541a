"""Metric design in the plan: metric sets, filtered metrics, conventions, groups."""

import pytest

from connector.metrics.filters import filter_digest, parse_conditions
from connector.metrics.models import (
    GroupKind,
    MetricConventions,
    MetricGroup,
    MetricKind,
    MetricMapping,
)
from connector.planner.plans import PlanAction, plan_apply, plan_compute
from connector.sources.models import ValueKind
from connector.sync.models import SyncItem
from tenants.scope import tenant_scope
from tests.metrics.conftest import make_event, make_plan

pytestmark = pytest.mark.django_db

PROPERTIES = {"plan": "string", "amount": "number"}


def compute(workspace, plan):
    with tenant_scope(workspace):
        return plan_compute(plan=plan)


def keyed(rows):
    return {row.mapping.metric_key: row for row in rows}


def test_metric_set__conversion_rate_and_count_per_conversion_event(workspace, admin, connected):
    event = make_event(workspace, "signup")

    rows = keyed(
        compute(workspace, make_plan(workspace, admin.user, ids=[event.pk], metric_set=True)).rows
    )

    assert set(rows) == {"signup-binary", "signup-count"}
    assert rows["signup-binary"].body["unitAggregationType"] == "average"
    assert rows["signup-count"].body["unitAggregationType"] == "sum"
    assert rows["signup-binary"].mapping.name == "Signup (conversion rate)"
    assert rows["signup-count"].mapping.name == "Signup (count)"
    assert {row.action for row in rows.values()} == {PlanAction.CREATE}


def test_metric_set__mean_and_p90_per_numeric_event(workspace, admin, connected):
    event = make_event(workspace, "page_load", value_kind=ValueKind.NUMERIC, unit="ms")

    plan = make_plan(workspace, admin.user, ids=[event.pk], metric_set=True, durations_lower=True)
    rows = keyed(compute(workspace, plan).rows)

    assert set(rows) == {"page_load-numeric", "page_load-p90-numeric"}
    assert rows["page_load-numeric"].body["analysisType"] == "mean"
    p90 = rows["page_load-p90-numeric"].body
    assert (p90["analysisType"], p90["percentileValue"]) == ("percentile", 90)
    assert rows["page_load-p90-numeric"].mapping.variant == "p90"
    assert p90["successCriteria"] == "LowerThanBaseline"


def test_filtered_metric__one_event_feeds_several_metrics(workspace, admin, connected):
    event = make_event(workspace, "purchase", properties=PROPERTIES)
    plan = make_plan(
        workspace,
        admin.user,
        ids=[event.pk],
        filtered=[("purchase", "plan = pro and amount > 100")],
    )

    rows = compute(workspace, plan).rows

    digest = filter_digest(parse_conditions("amount > 100 and plan = pro", PROPERTIES))
    assert [row.mapping.metric_key for row in rows] == [
        "purchase-binary",
        f"purchase-{digest}-binary",
    ]
    filtered = rows[1]
    assert filtered.body["filters"]["type"] == "group"
    assert filtered.body["filters"]["values"][0] == {
        "type": "eventProperty",
        "attribute": "amount",
        "op": "greaterThan",
        "values": [100],
        "negate": False,
    }
    assert filtered.mapping.name == "Purchase where amount > 100 and plan = pro"
    assert filtered.action == PlanAction.CREATE


def test_filtered_metric__refused_filter_blocks_its_row_only(workspace, admin, connected):
    event = make_event(workspace, "purchase", properties=PROPERTIES)
    plan = make_plan(workspace, admin.user, ids=[event.pk], filtered=[("purchase", "plan is set")])

    rows = compute(workspace, plan).rows

    assert [row.action for row in rows] == [PlanAction.CREATE, PlanAction.BLOCKED]
    assert rows[1].reason.startswith("Filter refused:")
    assert "exists" in rows[1].reason
    with tenant_scope(workspace):
        plan_apply(plan=plan, actor=admin.user)
        assert list(MetricMapping.objects.values_list("metric_key", flat=True)) == [
            "purchase-binary"
        ]


def test_conventions__name_template_and_tags_apply_to_every_metric(workspace, admin, connected):
    event = make_event(workspace, "signup")
    with tenant_scope(workspace):
        MetricConventions.objects.create(name_template="{event}-{kind}", tags=["growth"])

    rows = compute(
        workspace, make_plan(workspace, admin.user, ids=[event.pk], metric_set=True)
    ).rows

    assert [row.mapping.name for row in rows] == [
        "signup-Conversion (binary)",
        "signup-Conversion (count)",
    ]
    assert all("growth" in row.body["tags"] for row in rows)


def _funnel(*steps, name="Checkout funnel", **extra):
    return {"name": name, "kind": "funnel", "metrics": [{"event": s} for s in steps], **extra}


def test_funnel__from_ordered_events_planned_after_its_metrics(workspace, admin, connected):
    events = [make_event(workspace, key) for key in ("view_cart", "checkout", "paid")]
    plan = make_plan(
        workspace,
        admin.user,
        ids=[e.pk for e in events],
        groups=[_funnel("view_cart", "checkout", "paid")],
    )

    computed = compute(workspace, plan)

    (row,) = computed.groups
    assert row.action == PlanAction.CREATE
    assert row.body["key"] == "checkout-funnel"
    assert row.body["kind"] == GroupKind.FUNNEL
    assert [m["key"] for m in row.body["metrics"]] == [
        "view_cart-binary",
        "checkout-binary",
        "paid-binary",
    ]
    assert row.body["maintainerId"] == "member-1"
    with tenant_scope(workspace):
        plan_apply(plan=plan, actor=admin.user)
        items = list(SyncItem.objects.order_by("id"))
        assert [item.target_key for item in items][-1] == "checkout-funnel"
        assert MetricGroup.objects.get().metric_keys == [m["key"] for m in row.body["metrics"]]


def test_funnel__numeric_step_is_refused_with_the_reason(workspace, admin, connected):
    cart = make_event(workspace, "view_cart")
    value = make_event(workspace, "order_value", value_kind=ValueKind.NUMERIC, unit="USD")
    plan = make_plan(
        workspace,
        admin.user,
        ids=[cart.pk, value.pk],
        groups=[
            {
                "name": "Orders",
                "kind": "funnel",
                "metrics": [{"event": "view_cart"}, {"event": "order_value", "kind": "numeric"}],
            }
        ],
    )

    (row,) = compute(workspace, plan).groups

    assert row.action == PlanAction.BLOCKED
    assert "occurrence metrics" in row.reason
    assert "order_value-numeric" in row.reason


def test_funnel__mixed_randomization_units_refused_before_anything_is_sent(
    workspace, admin, connected
):
    """A funnel of a user metric and an organization metric shares no unit: the plan
    blocks the group, and applying sends nothing for it."""
    cart = make_event(workspace, "view_cart")
    paid = make_event(workspace, "paid")
    with tenant_scope(workspace):
        MetricMapping.objects.create(
            source_event=paid,
            kind=MetricKind.BINARY,
            project_key="default",
            metric_key="paid-binary",
            name="Paid",
            randomization_units=["organization"],
            desired_hash="x",
        )
    plan = make_plan(
        workspace, admin.user, ids=[cart.pk], groups=[_funnel("view_cart", "paid", name="Buy")]
    )

    (row,) = compute(workspace, plan).groups

    assert row.action == PlanAction.BLOCKED
    assert "share one randomization unit" in row.reason
    assert "paid-binary: organization" in row.reason
    with tenant_scope(workspace):
        plan_apply(plan=plan, actor=admin.user)
        assert not MetricGroup.objects.exists()
        assert not SyncItem.objects.filter(group__isnull=False).exists()


def test_funnel__fewer_than_two_metrics_and_unknown_steps_are_refused(workspace, admin, connected):
    cart = make_event(workspace, "view_cart")
    one = make_plan(workspace, admin.user, ids=[cart.pk], groups=[_funnel("view_cart")])
    unknown = make_plan(
        workspace, admin.user, ids=[cart.pk], groups=[_funnel("view_cart", "nowhere")]
    )

    assert "at least two metrics" in compute(workspace, one).groups[0].reason
    assert "nowhere (binary)" in compute(workspace, unknown).groups[0].reason


def test_standard_group__from_a_tag(workspace, admin, connected):
    events = [make_event(workspace, key) for key in ("a_event", "b_event")]
    plan = make_plan(
        workspace,
        admin.user,
        ids=[e.pk for e in events],
        tags=["checkout"],
        groups=[{"name": "Checkout metrics", "kind": "standard", "tag": "checkout"}],
    )

    (row,) = compute(workspace, plan).groups

    assert row.action == PlanAction.CREATE
    assert [m["key"] for m in row.body["metrics"]] == ["a_event-binary", "b_event-binary"]


def test_group__unchanged_once_applied_and_confirmed(workspace, admin, connected):
    events = [make_event(workspace, key) for key in ("view_cart", "paid")]
    ids = [e.pk for e in events]
    first = make_plan(workspace, admin.user, ids=ids, groups=[_funnel("view_cart", "paid")])
    with tenant_scope(workspace):
        plan_apply(plan=first, actor=admin.user)
        for obj in [*MetricMapping.objects.all(), *MetricGroup.objects.all()]:
            obj.applied_hash, obj.status, obj.managed = obj.desired_hash, "synced", True
            obj.save()

    again = compute(
        workspace, make_plan(workspace, admin.user, ids=ids, groups=[_funnel("view_cart", "paid")])
    )
    renamed = compute(
        workspace,
        make_plan(
            workspace,
            admin.user,
            ids=ids,
            groups=[_funnel("view_cart", "paid", description="Carts that pay")],
        ),
    )

    assert [row.action for row in again.groups] == [PlanAction.UNCHANGED]
    assert {row.action for row in again.rows} == {PlanAction.UNCHANGED}
    assert [row.action for row in renamed.groups] == [PlanAction.UPDATE]
    assert set(renamed.groups[0].changes) == {"description"}
