"""Plans: what each selected event becomes in LaunchDarkly, the review page, applying."""

import pytest
from django.urls import reverse
from django.utils import timezone

from connector.metrics.desired import MANAGED_TAG, fingerprint, metric_body
from connector.metrics.keys import metric_key_for
from connector.metrics.models import MetricMapping, MetricPlan
from connector.planner.plans import PlanAction, plan_apply, plan_compute
from connector.sources.models import ValueKind
from connector.sync.models import Action, RemoteMetric, SyncItem, SyncRun
from tenants.models import AuditEvent
from tenants.scope import tenant_scope
from tests.factories import TenantFactory
from tests.metrics.conftest import make_event, make_events, make_plan

pytestmark = pytest.mark.django_db


def compute(workspace, plan):
    with tenant_scope(workspace):
        return plan_compute(plan=plan)


def apply(workspace, plan, user):
    with tenant_scope(workspace):
        return plan_apply(plan=plan, actor=user)


def only_row(workspace, plan):
    rows = compute(workspace, plan).rows
    assert len(rows) == 1
    return rows[0]


def mark_synced(workspace):
    """What a finished sync leaves: LaunchDarkly confirmed every desired metric."""
    with tenant_scope(workspace):
        for mapping in MetricMapping.objects.all():
            mapping.applied_hash = mapping.desired_hash
            mapping.status = "synced"
            mapping.save()


def review_url(workspace, plan):
    return reverse("planner:plan", args=[workspace.slug, plan.pk])


def apply_url(workspace, plan):
    return reverse("planner:plan_apply", args=[workspace.slug, plan.pk])


# --- default kinds ---------------------------------------------------------------------


def test_plan__numeric_event__defaults_to_numeric_with_its_unit(workspace, admin, connected):
    event = make_event(workspace, "order_value", value_kind=ValueKind.NUMERIC, unit="USD")

    row = only_row(workspace, make_plan(workspace, admin.user, ids=[event.pk]))

    assert row.action == PlanAction.CREATE
    assert row.mapping.kind == "numeric" and row.body["isNumeric"] is True
    assert row.body["unit"] == "USD" and row.body["key"] == "order_value-numeric"
    assert row.body["unitAggregationType"] == "average" and row.body["analysisType"] == "mean"


def test_plan__conversion_event__defaults_to_binary(workspace, admin, connected):
    event = make_event(workspace, "signup_completed")

    row = only_row(workspace, make_plan(workspace, admin.user, ids=[event.pk]))

    assert row.mapping.kind == "binary" and row.body["isNumeric"] is False
    assert row.body["unitAggregationType"] == "average" and "unit" not in row.body


def test_plan__chosen_count_kind__sum_aggregation(workspace, admin, connected):
    event = make_event(workspace, "page_view")

    row = only_row(workspace, make_plan(workspace, admin.user, ids=[event.pk], kind="count"))

    assert row.mapping.kind == "count" and row.body["unitAggregationType"] == "sum"
    assert row.mapping.metric_key == "page_view-count"


def test_plan__templates_and_choices__in_the_metric(workspace, admin, connected):
    event = make_event(
        workspace,
        "load_time",
        name="Load time",
        description="Page load",
        value_kind=ValueKind.NUMERIC,
        unit="ms",
    )

    row = only_row(
        workspace,
        make_plan(
            workspace,
            admin.user,
            ids=[event.pk],
            name_template="{name} ({kind})",
            description_template="{key}: {description}",
            analysis="percentile",
            percentile=95,
            success_criteria="LowerThanBaseline",
            aggregation="sum",
            randomization_units=("user", "device"),
            tags=("web", "perf"),
        ),
    )

    body = row.body
    assert body["name"] == "Load time (Numeric)" and body["description"] == "load_time: Page load"
    assert body["analysisType"] == "percentile" and body["percentileValue"] == 95
    assert body["successCriteria"] == "LowerThanBaseline" and body["unitAggregationType"] == "sum"
    assert body["randomizationUnits"] == ["device", "user"]
    assert body["tags"] == sorted(["web", "perf", MANAGED_TAG])


# --- actions ---------------------------------------------------------------------------


def test_plan__create__new_event(workspace, admin, connected):
    event = make_event(workspace, "signup")

    row = only_row(workspace, make_plan(workspace, admin.user, ids=[event.pk]))

    assert row.action == PlanAction.CREATE and row.mapping.pk is None


def test_plan__unchanged__synced_mapping_same_choices(workspace, admin, connected):
    event = make_event(workspace, "signup")
    apply(workspace, make_plan(workspace, admin.user, ids=[event.pk], tags=("web",)), admin.user)
    mark_synced(workspace)

    row = only_row(workspace, make_plan(workspace, admin.user, ids=[event.pk], tags=("web",)))

    assert row.action == PlanAction.UNCHANGED and row.changes == {}


def test_plan__update__synced_mapping_new_tags_lists_the_change(workspace, admin, connected):
    event = make_event(workspace, "signup")
    apply(workspace, make_plan(workspace, admin.user, ids=[event.pk], tags=("web",)), admin.user)
    mark_synced(workspace)

    row = only_row(
        workspace, make_plan(workspace, admin.user, ids=[event.pk], tags=("web", "growth"))
    )

    assert row.action == PlanAction.UPDATE and row.mapping.pk is not None
    assert row.mapping.metric_key == "signup-binary"  # the key stays
    assert row.changes == {
        "tags": (sorted(["growth", "web", MANAGED_TAG]), sorted(["web", MANAGED_TAG]))
    }


def test_plan__adopt__launchdarkly_has_a_metric_with_that_key(workspace, admin, connected):
    event = make_event(workspace, "signup")
    with tenant_scope(workspace):
        RemoteMetric.objects.create(project_key="default", key="signup-binary", fingerprint="x")

    row = only_row(workspace, make_plan(workspace, admin.user, ids=[event.pk]))

    assert row.action == PlanAction.ADOPT
    assert "exists in LaunchDarkly" in row.reason and "will be updated" in row.reason


def test_plan__adopt__identical_remote_metric(workspace, admin, connected):
    event = make_event(workspace, "signup")
    plan = make_plan(workspace, admin.user, ids=[event.pk])
    desired = only_row(workspace, plan).mapping.desired_hash
    with tenant_scope(workspace):
        RemoteMetric.objects.create(project_key="default", key="signup-binary", fingerprint=desired)

    row = only_row(workspace, plan)

    assert row.action == PlanAction.ADOPT and row.reason.endswith("LaunchDarkly.")


def test_plan__adopt__other_project_is_not_a_match(workspace, admin, connected):
    event = make_event(workspace, "signup")
    with tenant_scope(workspace):
        RemoteMetric.objects.create(project_key="mobile", key="signup-binary", fingerprint="x")

    assert only_row(workspace, make_plan(workspace, admin.user, ids=[event.pk])).action == "create"


def test_plan__blocked__numeric_without_unit(workspace, admin, connected):
    event = make_event(workspace, "score", value_kind=ValueKind.NUMERIC, unit="")

    row = only_row(workspace, make_plan(workspace, admin.user, ids=[event.pk]))

    assert row.action == PlanAction.BLOCKED and "needs a unit" in row.reason


def test_plan__blocked__event_removed_at_source(workspace, admin, connected):
    event = make_event(workspace, "old_event", removed_at=timezone.now())

    row = only_row(workspace, make_plan(workspace, admin.user, ids=[event.pk]))

    assert row.action == PlanAction.BLOCKED and "removed at the source" in row.reason


@pytest.mark.parametrize("percentile", [0, 100, None])
def test_plan__blocked__percentile_out_of_range(workspace, admin, connected, percentile):
    event = make_event(workspace, "latency", value_kind=ValueKind.NUMERIC, unit="ms")

    row = only_row(
        workspace,
        make_plan(
            workspace, admin.user, ids=[event.pk], analysis="percentile", percentile=percentile
        ),
    )

    assert row.action == PlanAction.BLOCKED and "between 1 and 99" in row.reason


def test_plan__clash__events_slugging_alike_get_distinct_keys(workspace, admin, connected):
    a, b = make_event(workspace, "Sign Up"), make_event(workspace, "sign up")

    rows = compute(workspace, make_plan(workspace, admin.user, ids=[a.pk, b.pk])).rows

    keys = [row.mapping.metric_key for row in rows]
    assert len(set(keys)) == 2
    assert all(key.startswith("sign-up-") and key.endswith("-binary") for key in keys)


def test_plan__clash__key_taken_by_another_event_gets_longer_digest(workspace, admin, connected):
    taken_by, event = make_event(workspace, "other"), make_event(workspace, "signup")
    with tenant_scope(workspace):
        MetricMapping.objects.create(
            source_event=taken_by,
            kind="binary",
            project_key="default",
            metric_key="signup-binary",
            name="x",
            desired_hash="x",
        )

    row = only_row(workspace, make_plan(workspace, admin.user, ids=[event.pk]))

    assert row.mapping.metric_key == metric_key_for("signup", "binary", digest_length=16)
    assert row.mapping.metric_key != "signup-binary"


def test_plan__desired_hash__fingerprints_the_body(workspace, admin, connected):
    event = make_event(workspace, "signup")

    row = only_row(workspace, make_plan(workspace, admin.user, ids=[event.pk]))

    assert row.mapping.desired_hash == fingerprint(metric_body(row.mapping, event_key="signup"))


# --- the review page -------------------------------------------------------------------


def test_review__shows_counts_and_each_action(client_of, admin, workspace, connected):
    synced, new = make_event(workspace, "synced_event"), make_event(workspace, "new_event")
    adopt = make_event(workspace, "adopt_me")
    blocked = make_event(workspace, "no_unit", value_kind=ValueKind.NUMERIC)
    apply(workspace, make_plan(workspace, admin.user, ids=[synced.pk]), admin.user)
    mark_synced(workspace)
    with tenant_scope(workspace):
        RemoteMetric.objects.create(project_key="default", key="adopt_me-binary", fingerprint="x")
    plan = make_plan(workspace, admin.user, ids=[synced.pk, new.pk, adopt.pk, blocked.pk])

    response = client_of(admin).get(review_url(workspace, plan))

    assert response.status_code == 200
    assert dict(response.context["counts"]) == {
        "create": 1,
        "update": 0,
        "restore": 0,
        "adopt": 1,
        "by hand": 0,
        "archive": 0,
        "unchanged": 1,
        "blocked": 1,
    }
    page = response.content.decode()
    for key in ("new_event-binary", "adopt_me-binary", "synced_event-binary", "no_unit-numeric"):
        assert key in page
    assert "needs a unit" in page and "Apply: send 2 metrics" in page
    assert "1 blocked event will be left out" in page


def test_review__rows_paginated_and_filterable(client_of, admin, workspace, connected):
    events = make_events(workspace, 450)
    plan = make_plan(workspace, admin.user, ids=[e.pk for e in events])
    client = client_of(admin)

    first = client.get(review_url(workspace, plan))
    last = client.get(review_url(workspace, plan), {"page": 5})
    blocked = client.get(review_url(workspace, plan), {"action": "blocked"})

    assert len(first.context["rows"]) == 100 and len(last.context["rows"]) == 50
    assert dict(first.context["counts"])["create"] == 450
    assert blocked.context["rows"] == [] and "No event of this plan" in blocked.content.decode()


def test_review__not_connected__warning_no_apply_button(client_of, admin, workspace):
    event = make_event(workspace, "signup")
    plan = make_plan(workspace, admin.user, ids=[event.pk])

    page = client_of(admin).get(review_url(workspace, plan)).content.decode()

    assert "Connect LaunchDarkly first" in page and "Apply: send" not in page


def test_review__member__404(client_of, member, admin, workspace, connected):
    plan = make_plan(workspace, admin.user, ids=[make_event(workspace, "signup").pk])

    assert client_of(member).get(review_url(workspace, plan)).status_code == 404


def test_review__plan_of_another_workspace__404(client_of, admin, workspace, connected):
    other = TenantFactory()
    theirs = make_plan(other, None, ids=[make_event(other, "signup").pk])

    assert client_of(admin).get(review_url(workspace, theirs)).status_code == 404


# --- applying --------------------------------------------------------------------------


def test_apply__stores_mappings_starts_run_with_items_and_audits(
    client_of, admin, workspace, connected
):
    events = make_events(workspace, 4, numeric_every=2)  # 0, 2 numeric with unit
    blocked = make_event(workspace, "gone", removed_at=timezone.now())
    plan = make_plan(workspace, admin.user, ids=[*(e.pk for e in events), blocked.pk])

    response = client_of(admin).post(apply_url(workspace, plan), follow=True)

    assert "Sync started: 4 metrics." in response.content.decode()
    with tenant_scope(workspace):
        mappings = {m.metric_key: m for m in MetricMapping.objects.all()}
        assert set(mappings) == {
            "event_00000-numeric",
            "event_00001-binary",
            "event_00002-numeric",
            "event_00003-binary",
        }
        assert all(m.status == "pending" and m.applied_hash == "" for m in mappings.values())
        run = SyncRun.objects.get()
        assert run.trigger == "plan" and run.total == 4 and run.started_by == admin.user
        items = SyncItem.objects.filter(run=run)
        assert sorted(i.mapping.metric_key for i in items) == sorted(mappings)
        assert {i.action for i in items} == {Action.CREATE}
        plan.refresh_from_db()
        assert plan.applied_at is not None and plan.sync_run == run
        audit = AuditEvent.objects.get(action="plan.applied")
        assert audit.details["create"] == 4 and audit.details["blocked"] == 1
        assert audit.actor == admin.user and audit.details["run"] == run.pk


def test_apply__twice__nothing_new_and_says_so(client_of, admin, workspace, connected):
    events = make_events(workspace, 3)
    plan = make_plan(workspace, admin.user, ids=[e.pk for e in events])
    client = client_of(admin)

    client.post(apply_url(workspace, plan))
    again = client.post(apply_url(workspace, plan), follow=True)

    assert "This plan was applied already" in again.content.decode()
    with tenant_scope(workspace):
        assert SyncRun.objects.count() == 1 and SyncItem.objects.count() == 3
        assert MetricMapping.objects.count() == 3
        assert AuditEvent.objects.filter(action="plan.applied").count() == 1


def test_apply__service_twice__refused_without_a_second_run(admin, workspace, connected):
    from connector.planner.plans import PlanAlreadyApplied

    plan = make_plan(workspace, admin.user, ids=[make_event(workspace, "signup").pk])
    apply(workspace, plan, admin.user)
    stale = MetricPlan.objects.unscoped().get(pk=plan.pk)
    stale.applied_at = None  # as a second request that read the plan before the first ended

    with pytest.raises(PlanAlreadyApplied):
        apply(workspace, stale, admin.user)
    with tenant_scope(workspace):
        assert SyncRun.objects.count() == 1


def test_apply__update_and_adopt__items_with_those_actions(admin, workspace, connected):
    synced, adopt = make_event(workspace, "synced"), make_event(workspace, "adopt_me")
    apply(workspace, make_plan(workspace, admin.user, ids=[synced.pk]), admin.user)
    mark_synced(workspace)
    with tenant_scope(workspace):
        RemoteMetric.objects.create(project_key="default", key="adopt_me-binary", fingerprint="x")

    run = apply(
        workspace,
        make_plan(workspace, admin.user, ids=[synced.pk, adopt.pk], tags=("new",)),
        admin.user,
    )

    with tenant_scope(workspace):
        actions = {i.mapping.metric_key: i.action for i in SyncItem.objects.filter(run=run)}
        assert actions == {"synced-binary": Action.UPDATE, "adopt_me-binary": Action.ADOPT}
        assert MetricMapping.objects.get(metric_key="synced-binary").tags == ["new"]


def test_apply__only_unchanged__no_run_clear_message(client_of, admin, workspace, connected):
    event = make_event(workspace, "signup")
    apply(workspace, make_plan(workspace, admin.user, ids=[event.pk]), admin.user)
    mark_synced(workspace)
    plan = make_plan(workspace, admin.user, ids=[event.pk])
    review = client_of(admin).get(review_url(workspace, plan)).content.decode()

    response = client_of(admin).post(apply_url(workspace, plan), follow=True)

    assert "Nothing to send" in review and "Apply: send" not in review
    assert "Nothing to send" in response.content.decode()
    with tenant_scope(workspace):
        assert SyncRun.objects.count() == 1  # the first apply's only


def test_apply__not_connected__refused_nothing_stored(client_of, admin, workspace):
    plan = make_plan(workspace, admin.user, ids=[make_event(workspace, "signup").pk])

    response = client_of(admin).post(apply_url(workspace, plan), follow=True)

    assert "Connect LaunchDarkly first" in response.content.decode()
    assert "Nothing was changed" in response.content.decode()
    with tenant_scope(workspace):
        assert not MetricMapping.objects.exists() and not SyncRun.objects.exists()
        plan.refresh_from_db()
        assert plan.applied_at is None


def test_apply__member__404_nothing_applied(client_of, member, admin, workspace, connected):
    plan = make_plan(workspace, admin.user, ids=[make_event(workspace, "signup").pk])

    assert client_of(member).post(apply_url(workspace, plan)).status_code == 404
    with tenant_scope(workspace):
        plan.refresh_from_db()
        assert plan.applied_at is None and not SyncRun.objects.exists()


def test_apply__select_all_plan__applies_the_filter_as_it_is_now(admin, workspace, connected):
    make_events(workspace, 70, prefix="view")
    plan = make_plan(
        workspace,
        admin.user,
        filter={
            "q": "view",
            "value_kind": "",
            "seen_within_days": None,
            "removed": False,
            "order": "key",
            "mapped": None,
        },
    )
    make_events(workspace, 5, prefix="viewlate")

    run = apply(workspace, plan, admin.user)

    assert run.total == 75
