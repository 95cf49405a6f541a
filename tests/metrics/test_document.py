"""Metrics as code: a file read strictly, planned by the picker's engine (the same plan
for the same change), exported back byte for byte, and the whole truth on apply."""

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from connector.metrics.models import MappingStatus, MetricConventions, MetricMapping, MetricPlan
from connector.planner.actions import PlanAction
from connector.planner.document import (
    MAX_DOCUMENT_BYTES,
    DocumentInvalid,
    DocumentTooLarge,
    document_apply,
    document_choices,
    document_export,
    document_parse,
    document_plan,
    document_plan_create,
    document_refresh,
)
from connector.planner.plans import Choices, plan_compute
from connector.sources.models import SourceEvent, ValueKind
from connector.sync.models import Action, SyncItem
from tenants.scope import tenant_scope
from tests.metrics.conftest import make_event, make_plan
from tests.sync.conftest import connect_workspace, sandbox_metrics
from tests.sync.test_engine import run_all

pytestmark = pytest.mark.django_db

PROPERTIES = {"plan": "string", "amount": "number"}


def problems(text):
    with pytest.raises(DocumentInvalid) as raised:
        document_parse(text)
    return [str(error) for error in raised.value.errors]


def rows_of(plan):
    """What a plan does, row by row: the comparison of two plans."""
    return [(row.action, row.mapping.metric_key, row.body) for row in plan.rows]


def in_scope(workspace, fn, *args, **kwargs):
    with tenant_scope(workspace):
        return fn(*args, **kwargs)


# --- reading -----------------------------------------------------------------------------


def test_parse__every_problem_with_its_place__nothing_read_or_written():
    text = """
version: 1
colour: blue
events:
  - {key: purchase, kind: numeric}
  - {key: signup, kind: sometimes}
metrics:
  - {event: signup, kind: binary}
  - {event: signup, kind: gauge}
  - {event: purchase, kind: numeric, analysis: percentile, percentile: 150}
  - {event: purchase, kind: numeric, analysis: percentile}
  - {event: signup, kind: binary, percentile: 90, colour: red}
  - {event: signup, kind: count, unit_aggregation: average}
  - {event: signup, kind: binary, filter: "plan = pro", filters: []}
  - {kind: binary, key: "bad key"}
  - {event: signup, kind: binary, key: signup-binary}
  - {event: signup, kind: binary, key: signup-binary, event_default: exclude}
groups:
  - {name: Funnel, kind: funnel, tag: checkout}
  - {kind: pyramid, metrics: [signup-binary, {event: signup, key: x}]}
"""
    found = problems(text)

    assert found == [
        "colour: unknown key; expected one of: version, workspace, project, conventions, "
        "events, metrics, groups",
        "events[0].unit: is required for numeric events (e.g. USD, ms, items)",
        "events[1].kind: must be one of: conversion, numeric",
        "metrics[1].kind: must be binary, count or numeric",
        "metrics[2].percentile: must be a whole number from 1 to 99",
        "metrics[3].percentile: is required for percentile analysis: 1 to 99",
        "metrics[4].colour: unknown key; expected one of: event, kind, key, variant, analysis, "
        "percentile, filter, filters, name, description, success_criteria, unit_aggregation, "
        "randomization_units, tags, event_default",
        "metrics[4].percentile: only numeric metrics have an analysis",
        "metrics[5].unit_aggregation: a count metric's aggregation is sum, by its kind; for a "
        "sum of occurrences use kind: count",
        "metrics[6].filters: write the conditions once: `filter` or `filters`",
        "metrics[7].event: is required",
        "metrics[7].key: must be letters, digits, “.”, “_” and “-”, starting with a letter or "
        "digit",
        "metrics[9].event_default: only numeric metrics have it: a conversion already counts "
        "a unit without events as not converted",
        "groups[0].tag: a funnel's steps are ordered: list them under `metrics`; a tag makes a "
        "standard group only",
        "groups[1].name: is required",
        "groups[1].kind: must be funnel or standard",
        "groups[1].metrics[1].event: name a metric by its `key` or by its `event`",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "the file is empty; it starts with `version: 1`"),
        ("- version: 1", "the file is a list, not a mapping; it starts with `version: 1`"),
        ("metrics: []", "version: is required: 1"),
        ("version: 2", "version: must be 1 (the only version there is)"),
        ("version: true", "version: must be 1 (the only version there is)"),
        ("version: 1.0", "version: must be 1 (the only version there is)"),
        ("version: 1\nmetrics: {event: a}", "metrics: must be a list"),
        (
            "version: 1\nmetrics:\n  - {event: a, kind: binary\n",
            "line 4, column 1: not valid YAML: did not find expected ',' or '}'",
        ),
        (
            "version: 1\nx: &a [1]\ny: *a\n",
            "line 3, column 4: not valid YAML: aliases (*name) are not allowed in a metrics file",
        ),
        (b"version: 1\n\xff", "the file is not UTF-8 text (byte 11)"),
        (
            "version: 1\nmetrics:\n  - {event: a, kind: binary, key: a-binary}\n"
            "  - {event: b, kind: binary, key: a-binary}\n",
            "metrics[1]: a metric key “a-binary” is named twice (also metrics[0])",
        ),
        (
            "version: 1\ngroups:\n  - {name: Checkout, kind: standard, metrics: []}\n"
            "  - {name: checkout, kind: funnel, metrics: []}\n",
            "groups[1]: a group “checkout” is named twice (also groups[0])",
        ),
    ],
)
def test_parse__refused_whole__the_reason_says_where(text, expected):
    assert problems(text) == [expected]


def test_parse__the_example_of_the_docs__plans(workspace, connected):
    """docs/metrics-as-code.md's example is a file that reads, and plans every metric."""
    text = (Path(__file__).parents[2] / "docs" / "metrics-as-code.md").read_text()
    example = text.split("```yaml\n", 1)[1].split("```", 1)[0]

    plan, to_add = in_scope(workspace, document_plan, document_parse(example))

    assert [e.key for e in to_add] == ["checkout", "purchase", "view_cart"]
    assert {row.action for row in plan.rows} == {PlanAction.CREATE}
    assert [row.action for row in plan.groups] == [PlanAction.CREATE, PlanAction.CREATE]


def test_parse__many_problems__the_first_hundred_and_a_count():
    text = "version: 1\nmetrics:\n" + "  - {event: a, kind: gauge}\n" * 150

    found = problems(text)

    assert len(found) == 101 and found[-1] == "… and 50 more problems"


def test_parse__over_the_size_cap__refused_unread():
    text = "version: 1\n# " + "x" * MAX_DOCUMENT_BYTES

    with pytest.raises(DocumentTooLarge) as raised:
        document_parse(text)

    assert f"at most {MAX_DOCUMENT_BYTES}" in str(raised.value)


def test_parse__good_file__the_specs_of_each_metric():
    document = document_parse(
        """
version: 1
workspace: acme
events:
  - {key: purchase, name: Purchase, kind: numeric, unit: USD, properties: {plan: string}}
metrics:
  - event: purchase
    kind: numeric
    analysis: percentile
    percentile: 90
    filter: "plan = pro"
    tags: [growth, checkout, growth]
groups:
  - {name: Purchases, kind: standard, metrics: [a-binary, {key: b-binary, name: B}]}
"""
    )

    assert document.workspace == "acme"
    assert document.events == (
        {
            "key": "purchase",
            "name": "Purchase",
            "value_kind": "numeric",
            "unit": "USD",
            "properties": {"plan": "string"},
        },
    )
    choices = document_choices(document)
    assert choices.prune is True
    assert choices.explicit == (
        (
            "purchase",
            (
                {
                    "kind": "numeric",
                    "analysis": "percentile",
                    "percentile": 90,
                    "filter": "plan = pro",
                    "tags": ["checkout", "growth"],
                },
            ),
        ),
    )
    assert choices.groups[0]["metrics"] == ["a-binary", {"key": "b-binary", "name": "B"}]
    # A saved plan keeps them: what the review page computes is what was read.
    assert Choices.from_json(choices.to_json()) == choices


# --- planning: the picker's engine ----------------------------------------------------------


def test_plan__file_and_picker__same_rows_for_the_same_change(workspace, admin, connected):
    purchase = make_event(
        workspace, "purchase", value_kind=ValueKind.NUMERIC, unit="USD", properties=PROPERTIES
    )
    signup = make_event(workspace, "signup", properties=PROPERTIES)
    picker = make_plan(
        workspace,
        admin.user,
        ids=[purchase.pk, signup.pk],
        tags=("growth",),
        filtered=[("purchase", "plan = pro and amount > 100"), ("signup", "plan = pro")],
    )
    document = document_parse(
        """
version: 1
metrics:
  - {event: signup, kind: binary, tags: [growth]}
  - {event: signup, kind: binary, filter: "plan = pro", tags: [growth]}
  - {event: purchase, kind: numeric, tags: [growth]}
  - event: purchase
    kind: numeric
    filters: [{property: amount, op: ">", values: [100]}, {property: plan, op: "=", values: [pro]}]
    tags: [growth]
"""
    )

    from_picker = in_scope(workspace, plan_compute, plan=picker)
    from_file, to_add = in_scope(workspace, document_plan, document)

    assert to_add == []
    assert rows_of(from_file) == rows_of(from_picker)
    assert [row.action for row in from_file.rows] == [PlanAction.CREATE] * 4


def test_plan__metric_set_as_a_file__same_rows_as_the_picker(workspace, admin, connected):
    event = make_event(workspace, "page_load", value_kind=ValueKind.NUMERIC, unit="ms")
    picker = make_plan(workspace, admin.user, ids=[event.pk], metric_set=True, durations_lower=True)
    document = document_parse(
        """
version: 1
metrics:
  - {event: page_load, kind: numeric, analysis: mean, name: Page Load (mean),
     success_criteria: LowerThanBaseline}
  - {event: page_load, kind: numeric, variant: p90, analysis: percentile, percentile: 90,
     name: Page Load (p90), success_criteria: LowerThanBaseline}
"""
    )

    from_picker = in_scope(workspace, plan_compute, plan=picker)
    from_file, _ = in_scope(workspace, document_plan, document)

    assert rows_of(from_file) == rows_of(from_picker)
    assert [row.mapping.metric_key for row in from_file.rows] == [
        "page_load-numeric",
        "page_load-p90-numeric",
    ]


def test_plan__saved_for_review__the_review_page_computes_the_same_plan(
    workspace, admin, connected
):
    make_event(workspace, "signup")
    text = """
version: 1
events:
  - {key: purchase, name: Purchase, kind: numeric, unit: USD, properties: {plan: string}}
metrics:
  - {event: signup, kind: count}
  - {event: purchase, kind: numeric, filter: "plan = pro", name: Pro purchases}
"""
    document = document_parse(text)
    before, to_add = in_scope(workspace, document_plan, document)

    plan = in_scope(workspace, document_plan_create, document=document, actor=admin.user)

    assert [event.key for event in to_add] == ["purchase"] and to_add[0].pk is None
    with tenant_scope(workspace):
        added = SourceEvent.objects.get(key="purchase")
        assert (added.value_kind, added.unit, added.properties) == (
            "numeric",
            "USD",
            {"plan": "string"},
        )
        assert plan.applied_at is None and not MetricMapping.objects.exists()
        review = plan_compute(plan=MetricPlan.objects.get(pk=plan.pk))
    assert rows_of(review) == rows_of(before)
    assert [row.mapping.name for row in review.rows] == ["Pro purchases", "Signup"]


def test_plan__event_neither_in_catalog_nor_in_file__an_error_naming_it(workspace, connected):
    document = document_parse("version: 1\nmetrics:\n  - {event: ghost, kind: binary}\n")

    with pytest.raises(DocumentInvalid) as raised:
        in_scope(workspace, document_plan, document)

    assert [str(e) for e in raised.value.errors] == [
        "metrics[0].event: no event “ghost” in the workspace's catalog or in the file's "
        "`events:`; add its definition there"
    ]


def test_plan__new_events_of_the_file__each_its_own_metric(workspace, connected):
    """Events the catalog lacks are unsaved in the plan, yet each keeps its own metrics."""
    document = document_parse(
        """
version: 1
events: [{key: a_event, name: A}, {key: b_event, name: B}]
metrics: [{event: a_event, kind: binary}, {event: b_event, kind: binary}]
"""
    )

    plan, to_add = in_scope(workspace, document_plan, document)

    assert [e.key for e in to_add] == ["a_event", "b_event"]
    assert [(row.action, row.mapping.metric_key) for row in plan.rows] == [
        (PlanAction.CREATE, "a_event-binary"),
        (PlanAction.CREATE, "b_event-binary"),
    ]


def test_plan__one_metric_twice_or_a_key_of_another__errors(workspace, admin, connected):
    signup = make_event(workspace, "signup")
    make_event(workspace, "paid")
    with tenant_scope(workspace):
        MetricMapping.objects.create(
            source_event=signup,
            kind="binary",
            project_key="default",
            metric_key="signup-binary",
            name="Signup",
            desired_hash="x",
        )
    document = document_parse(
        """
version: 1
metrics:
  - {event: signup, kind: binary, key: signup-conversion}
  - {event: paid, kind: binary, key: signup-binary}
  - {event: paid, kind: binary, name: Paid again}
"""
    )

    with pytest.raises(DocumentInvalid) as raised:
        in_scope(workspace, document_plan, document)

    assert [str(e) for e in raised.value.errors] == [
        "metrics[1].key: “signup-binary” is the key of another metric of the workspace "
        "(event signup, kind binary)",
        "metrics[2]: the same metric as metrics[1] (event paid, kind binary); give one of "
        "them another `variant`",
        "metrics[0].key: this metric (event signup, kind binary) has the key “signup-binary”, "
        "and a metric's key never changes: write that key, or leave `key` out",
    ]


def test_plan__not_connected__the_plan_says_why(workspace):
    make_event(workspace, "signup")
    document = document_parse("version: 1\nmetrics: [{event: signup, kind: binary}]\n")

    plan, _ = in_scope(workspace, document_plan, document)

    assert plan.problem.startswith("Connect LaunchDarkly first")


# --- exporting -----------------------------------------------------------------------------


def _synced(workspace):
    with tenant_scope(workspace):
        for mapping in MetricMapping.objects.all():
            mapping.applied_hash, mapping.status, mapping.managed = (
                mapping.desired_hash,
                MappingStatus.SYNCED,
                True,
            )
            mapping.save()


def test_export__round_trip__same_bytes_and_a_plan_that_changes_nothing(
    workspace, admin, connected
):
    make_event(
        workspace,
        "purchase",
        value_kind=ValueKind.NUMERIC,
        unit="USD",
        properties={**PROPERTIES, "note": "string"},
        description="A paid order",
    )
    make_event(workspace, "signup", properties=PROPERTIES)
    with tenant_scope(workspace):
        MetricConventions.objects.create(name_template="{name}", tags=["growth"])
    text = """
version: 1
metrics:
  - {event: signup, kind: binary}
  - {event: signup, kind: count, filter: "plan in (pro, team)", name: Team signups}
  - {event: purchase, kind: numeric, variant: p90, analysis: percentile, percentile: 90}
  - event: purchase
    kind: numeric
    # " and " inside a value does not survive the text form: exported structured.
    filters: [{property: note, op: "=", values: ["salt and pepper"]}]
    event_default: exclude
    randomization_units: [user, organization]
"""
    in_scope(workspace, document_apply, document=document_parse(text), actor=admin.user)
    _synced(workspace)

    exported = in_scope(workspace, document_export)
    again = in_scope(workspace, document_export)
    plan, to_add = in_scope(workspace, document_plan, document_parse(exported))

    assert exported == again
    assert [row.action for row in plan.rows] == [PlanAction.UNCHANGED] * 4
    assert to_add == []
    assert "filter: plan in (pro, team)" in exported
    assert "- property: note" in exported and "salt and pepper" in exported
    reread = document_parse(exported)
    with tenant_scope(workspace):
        stored = [
            (m.source_event.key, m.metric_key, m.variant, m.name, m.tags)
            for m in MetricMapping.objects.order_by("source_event__key", "metric_key")
        ]
    assert [
        (m["event"], m["key"], m["variant"], m["name"], m["tags"]) for m in reread.metrics
    ] == stored
    assert reread.events[0] == {
        "key": "purchase",
        "name": "Purchase",
        "value_kind": "numeric",
        "unit": "USD",
        "description": "A paid order",
        "properties": {"amount": "number", "note": "string", "plan": "string"},
    }


def test_export__deleted_archived_and_orphaned_metrics__left_out(workspace, admin, connected):
    events = {key: make_event(workspace, key) for key in ("kept", "gone", "archived", "orphan")}
    text = "version: 1\nmetrics:\n" + "".join(
        f"  - {{event: {key}, kind: binary}}\n" for key in events
    )
    in_scope(workspace, document_apply, document=document_parse(text), actor=admin.user)
    with tenant_scope(workspace):
        MetricMapping.objects.filter(source_event__key="gone").update(status=MappingStatus.DELETED)
        MetricMapping.objects.filter(source_event__key="archived").update(
            status=MappingStatus.ARCHIVED
        )
        SourceEvent.objects.filter(key="orphan").update(removed_at="2026-01-01T00:00:00Z")

    exported = document_parse(in_scope(workspace, document_export))

    assert [m["key"] for m in exported.metrics] == ["kept-binary"]
    assert [e["key"] for e in exported.events] == ["kept"]


# --- applying: against the sandbox ---------------------------------------------------------

FILE = """
version: 1
events:
  - {key: purchase, name: Purchase, kind: numeric, unit: USD, properties: {plan: string}}
  - {key: signup, name: Signup}
metrics:
  - {event: signup, kind: binary}
  - {event: purchase, kind: numeric}
  - {event: purchase, kind: numeric, filter: "plan = pro", name: Pro purchases}
"""


@pytest.fixture
def applied(client_of, admin, workspace, ld):
    """FILE applied and synced to the sandbox (in-process, as the workers would)."""
    connect_workspace(client_of(admin), workspace, ld)
    plan, run = in_scope(workspace, document_apply, document=document_parse(FILE), actor=admin.user)
    run_all(workspace)
    return plan, run


def test_apply__creates_each_metric_then_the_same_file_changes_nothing(
    applied, workspace, admin, ld
):
    _, run = applied

    with tenant_scope(workspace):
        assert {i.action for i in SyncItem.objects.filter(run=run)} == {Action.CREATE}
        assert set(MetricMapping.objects.values_list("status", flat=True)) == {MappingStatus.SYNCED}
        again, to_add = document_plan(document_parse(FILE))
        second_plan, second_run = document_apply(document=document_parse(FILE), actor=admin.user)
    assert sorted(m["key"] for m in sandbox_metrics(ld)) == sorted(
        row.mapping.metric_key for row in again.rows
    )
    assert [row.action for row in again.rows] == [PlanAction.UNCHANGED] * 3
    assert to_add == []
    assert second_run is None and second_plan.applied_at is not None


def test_apply__metric_removed_from_the_file__archived(applied, workspace, admin, ld, client_of):
    shorter = FILE.replace(
        '  - {event: purchase, kind: numeric, filter: "plan = pro", name: Pro purchases}\n', ""
    )
    assert shorter != FILE
    with tenant_scope(workspace):
        pro_key = MetricMapping.objects.get(name="Pro purchases").metric_key

        plan, _ = document_plan(document_parse(shorter))
        assert [(row.action, row.mapping.metric_key) for row in plan.rows] == [
            (PlanAction.UNCHANGED, "purchase-numeric"),
            (PlanAction.UNCHANGED, "signup-binary"),
            (PlanAction.ARCHIVE, pro_key),
        ]
        assert plan.rows[2].reason.startswith("No longer in the file")
        saved = document_plan_create(document=document_parse(shorter), actor=admin.user)
    review = _page_text(
        client_of(admin).get(reverse("planner:plan", args=[workspace.slug, saved.pk]))
    )
    assert "Archive: <strong>1</strong>" in review and "No longer in the file" in review
    with tenant_scope(workspace):
        _, run = document_apply(document=document_parse(shorter), actor=admin.user)
        assert [i.action for i in SyncItem.objects.filter(run=run)] == [Action.ARCHIVE]
    run_all(workspace)

    archived = {m["key"]: m["archived"] for m in sandbox_metrics(ld)}
    assert archived == {"purchase-numeric": False, "signup-binary": False, pro_key: True}
    with tenant_scope(workspace):
        assert MetricMapping.objects.get(metric_key=pro_key).status != MappingStatus.SYNCED
        # Archived metrics are no longer the workspace's: the file it exports names two.
        assert len(document_parse(document_export()).metrics) == 2

        # Named again, it comes back: restored (un-archived), not created twice. The
        # plan reads LaunchDarkly's metrics on the file's events first, as the review does.
        assert document_refresh(document_parse(FILE)) == ""
        back, _ = document_plan(document_parse(FILE))
        actions = {row.mapping.metric_key: row.action for row in back.rows}
        assert actions[pro_key] == PlanAction.RESTORE, back.rows
        document_apply(document=document_parse(FILE), actor=admin.user)
    run_all(workspace)
    assert {m["key"]: m["archived"] for m in sandbox_metrics(ld)}[pro_key] is False


def test_apply__refused__nothing_written(workspace, admin):
    """Not connected: the plan cannot be applied, and the events the file would add
    are not added either (all or nothing)."""
    document = document_parse(FILE)

    with pytest.raises(Exception, match="Connect LaunchDarkly first"):
        in_scope(workspace, document_apply, document=document, actor=admin.user)

    with tenant_scope(workspace):
        assert not SourceEvent.objects.exists()
        assert not MetricPlan.objects.exists()


# --- the import page --------------------------------------------------------------------------


def _page_text(response):
    return " ".join(response.content.decode().split())


def test_import_page__problems_by_place__nothing_changed(client_of, admin, workspace, connected):
    client = client_of(admin)
    url = reverse("metrics_code:import", args=[workspace.slug])

    response = client.post(url, {"text": "version: 1\nmetrics:\n  - {event: a, kind: gauge}\n"})

    assert response.status_code == 400
    page = _page_text(response)
    assert "The file was not imported: 1 problem." in page
    assert '<code>metrics[0].kind</code></td><td class="col-details">must be binary' in page
    with tenant_scope(workspace):
        assert not SourceEvent.objects.exists() and not MetricPlan.objects.exists()


def test_import_page__good_file__summary_then_the_review_page(
    client_of, admin, workspace, connected
):
    client = client_of(admin)
    upload = SimpleUploadedFile("metrics.yaml", FILE.encode(), content_type="application/yaml")

    summary = client.post(reverse("metrics_code:import", args=[workspace.slug]), {"file": upload})

    page = _page_text(summary)
    assert summary.status_code == 200
    assert "Add 2 events and create the plan" in page
    assert "<code>purchase</code>, <code>signup</code>" in page
    assert "Create: <strong>3</strong>" in page
    with tenant_scope(workspace):
        assert not SourceEvent.objects.exists() and not MetricPlan.objects.exists()

    created = client.post(
        reverse("metrics_code:import_plan", args=[workspace.slug]), {"document": FILE}
    )

    with tenant_scope(workspace):
        plan = MetricPlan.objects.get()
        assert sorted(SourceEvent.objects.values_list("key", flat=True)) == ["purchase", "signup"]
        assert plan.applied_at is None and plan.created_by == admin.user
    assert created.status_code == 302
    assert created["Location"] == reverse("planner:plan", args=[workspace.slug, plan.pk])
    review = _page_text(client.get(created["Location"]))
    assert "Review the plan" in review and "Create: <strong>3</strong>" in review
    assert "signup-binary" in review
    # The file is the plan's source: the page says so, and offers no picker edits.
    assert "From a metrics-as-code file" in review and "Import another file" in review
    assert "Change the selection" not in review and "Add a metric group" not in review


def test_import_page__file_changed_meanwhile__checked_again(client_of, admin, workspace):
    client = client_of(admin)

    response = client.post(
        reverse("metrics_code:import_plan", args=[workspace.slug]), {"document": "version: 3"}
    )

    assert response.status_code == 400
    assert "must be 1 (the only version there is)" in response.content.decode()


def test_export_page__a_download_of_the_workspace_file(client_of, member, admin, workspace):
    make_event(workspace, "signup")
    in_scope(
        workspace,
        document_plan_create,
        document=document_parse("version: 1\nmetrics: [{event: signup, kind: binary}]\n"),
        actor=admin.user,
    )

    response = client_of(member).get(reverse("metrics_code:export", args=[workspace.slug]))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/yaml; charset=utf-8"
    assert response["Content-Disposition"] == (
        f'attachment; filename="{workspace.slug}-metrics.yaml"'
    )
    assert response.content.decode() == in_scope(workspace, document_export)
