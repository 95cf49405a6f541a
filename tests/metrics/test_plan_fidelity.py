"""A plan over a project as LaunchDarkly really holds it: a metric made by hand on one
of the events, one of ours archived there, one in use by an experiment. Each shows as
what it is, and applying creates no duplicate (contract MET-LIST-1, MET-USAGE-1,
MET-ARCHIVE-2)."""

import pytest
from django.urls import reverse

from connector.metrics.desired import MANAGED_TAG
from connector.metrics.models import MetricMapping
from tenants.scope import tenant_scope
from tests.metrics.conftest import make_event, make_plan
from tests.sync.conftest import apply_plan, connect_workspace, sandbox_metrics
from tests.sync.test_engine import run_all
from tests.sync.test_resync import ld_call


def review(client, workspace, plan):
    return " ".join(
        client.get(reverse("planner:plan", args=[workspace.slug, plan.pk])).content.decode().split()
    )


@pytest.fixture
def project_as_found(client_of, admin, workspace, ld):
    """Ours on `archived_event` (archived by a person) and `used_event` (in an active
    experiment); a hand-made metric on `hand_event`; `new_event` has nothing."""
    client = client_of(admin)
    connect_workspace(client, workspace, ld)
    events = {
        key: make_event(workspace, key)
        for key in ("hand_event", "archived_event", "used_event", "new_event")
    }
    apply_plan(workspace, admin.user, [events["archived_event"], events["used_event"]])
    run_all(workspace)
    with tenant_scope(workspace):
        keys = {m.source_event.key: m.metric_key for m in MetricMapping.objects.all()}
    ld_call(
        ld,
        "PATCH",
        f"/api/v2/metrics/default/{keys['archived_event']}",
        json=[{"op": "replace", "path": "/archived", "value": True}],
    )
    ld.set_metric_usage("default", keys["used_event"], experiments=1, active_experiments=1)
    ld_call(
        ld,
        "POST",
        "/api/v2/metrics/default",
        json={
            "key": "checkout-by-hand",
            "name": "Checkout (by hand)",
            "kind": "custom",
            "eventKey": "hand_event",
            "isNumeric": False,
        },
    )
    # The new plan tags every metric: the one in use would change.
    plan = make_plan(workspace, admin.user, ids=[e.pk for e in events.values()], tags=("checkout",))
    return client, plan, events, keys


@pytest.mark.django_db
def test_plan__hand_made_archived_and_in_use__each_shown_for_what_it_is(
    project_as_found, workspace, ld
):
    client, plan, events, _ = project_as_found

    page = review(client, workspace, plan)

    assert "Create: <strong>1</strong>" in page  # new_event only
    assert "Restore: <strong>1</strong>" in page and "Archived in LaunchDarkly" in page
    assert "By hand: <strong>1</strong>" in page
    assert "A metric made by hand in LaunchDarkly already measures this event" in page
    assert "“Checkout (by hand)” (checkout-by-hand)" in page
    assert f'name="by_hand_{events["hand_event"].pk}"' in page
    assert "In use by 1 experiment." in page
    assert 'name="confirm_in_use"' in page
    # One live read of the plan's events, with their use, instead of the last resync.
    reads = [r for r in ld.requests_since(0) if "eventKeys" in r["path"]]
    assert len(reads) == 1 and "expand=experimentCount" in reads[0]["path"]


@pytest.mark.django_db
def test_plan__apply_without_confirming_the_metric_in_use__nothing_sent(
    project_as_found, workspace, ld
):
    client, plan, _, _ = project_as_found
    review(client, workspace, plan)
    before = len(sandbox_metrics(ld))

    answer = client.post(reverse("planner:plan_apply", args=[workspace.slug, plan.pk]), follow=True)

    assert "used by experiments: confirm that you want to change them" in answer.content.decode()
    plan.refresh_from_db()
    assert plan.applied_at is None and plan.sync_run is None
    assert len(sandbox_metrics(ld)) == before


@pytest.mark.django_db
@pytest.mark.parametrize("decision", ["adopt", "alongside"])
def test_plan__choose_then_apply__no_duplicate_without_saying_so(
    project_as_found, workspace, ld, decision
):
    client, plan, events, keys = project_as_found
    review(client, workspace, plan)
    value = "adopt:checkout-by-hand" if decision == "adopt" else "alongside"
    client.post(
        reverse("planner:plan_choose", args=[workspace.slug, plan.pk]),
        {f"by_hand_{events['hand_event'].pk}": value},
    )
    page = review(client, workspace, plan)
    assert "By hand: <strong>0</strong>" in page

    client.post(
        reverse("planner:plan_apply", args=[workspace.slug, plan.pk]), {"confirm_in_use": "1"}
    )
    run_all(workspace)

    metrics = {m["key"]: m for m in sandbox_metrics(ld)}
    on_hand_event = sorted(k for k, m in metrics.items() if m["eventKey"] == "hand_event")
    if decision == "adopt":
        assert on_hand_event == ["checkout-by-hand"]
        assert MANAGED_TAG in metrics["checkout-by-hand"]["tags"]
    else:
        assert len(on_hand_event) == 2 and "checkout-by-hand" in on_hand_event
        assert MANAGED_TAG not in metrics["checkout-by-hand"]["tags"]  # left as it was
    assert metrics[keys["archived_event"]]["archived"] is False  # restored
    assert "checkout" in metrics[keys["used_event"]]["tags"]  # changed, as confirmed
    # Exactly one metric per event, plus the hand-made twin only when asked for.
    assert len(metrics) == 4 + (decision == "alongside")
