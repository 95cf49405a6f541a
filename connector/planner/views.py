"""The event picker, the plan review and applying a plan.

Members may browse the catalog; admins choose what becomes a metric. A plan is saved
before anything is sent, shown with what will happen to each event, and applied once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.core.cache import cache
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.text import Truncator
from django.utils.timesince import timesince
from django.views.decorators.http import require_POST

from connector.connections.models import LaunchDarklyConnection
from connector.connections.selectors import connection_of_workspace
from connector.connections.services import client_for
from connector.inputs import ID_MAX, PAGE_MAX, whole_number, whole_number_or_none
from connector.metrics.desired import MANAGED_TAG
from connector.metrics.models import Analysis, MetricKind, MetricPlan
from connector.metrics.selectors import picker_events
from connector.planner.forms import PickerFilterForm, PlanChoicesForm
from connector.planner.plans import (
    AUTO,
    Choices,
    PlanAction,
    PlanAlreadyApplied,
    PlanNotApplicable,
    PlanRow,
    is_duration,
    plan_apply,
    plan_compute,
    plan_create,
)
from connector.sources.models import SourceEvent, ValueKind
from connector.sources.selectors import EventFilter
from connector.sync.models import ItemStatus, SyncRun
from connector.sync.selectors import run_progress
from tenants.http import WorkspaceRequest
from tenants.models import AuditAction, AuditEvent, Role
from tenants.views import workspace_view

log = logging.getLogger(__name__)

# What a person reads when work is saved but the task queue cannot be reached.
QUEUE_DOWN = (
    "The task queue (Redis) cannot be reached right now, so workers have not picked it up "
    "yet; nothing is lost, and the sync starts by itself when it is back."
)
PLAN_PAGE_SIZE = 100
CONTEXT_KINDS_TTL_S = 10 * 60
DEFAULT_UNITS = ["user"]


# --- randomization units ---------------------------------------------------------------


def _context_kinds_cache_key(connection: LaunchDarklyConnection) -> str:
    return f"planner:context-kinds:{connection.pk}:{connection.project_key}"


def randomization_units() -> tuple[list[str], str]:
    """The connected project's context kinds, and a note when they cannot be offered.

    Cached per connection and project; any LaunchDarkly trouble falls back to `user`
    with a note, because the picker must keep working without LaunchDarkly."""
    connection = connection_of_workspace()
    if connection is None or not connection.is_usable or not connection.project_key:
        return DEFAULT_UNITS, (
            "Connect LaunchDarkly and choose a project to offer its context kinds as "
            "randomization units; until then only user is offered."
        )
    key = _context_kinds_cache_key(connection)
    units = cache.get(key)
    if units is None:
        try:
            kinds = client_for(connection).list_context_kinds(connection.project_key)
        except Exception:
            log.warning("listing the context kinds of connection %s failed", connection.pk)
            return DEFAULT_UNITS, (
                "LaunchDarkly's context kinds could not be read just now, so only user is "
                "offered. Reload the page to try again."
            )
        units = sorted(
            {kind["key"] for kind in kinds if kind.get("key") and not kind.get("archived")}
        ) or list(DEFAULT_UNITS)
        cache.set(key, units, CONTEXT_KINDS_TTL_S)
    return units, ""


# --- the picker ----------------------------------------------------------------------


def _event_filter(selection_filter: dict[str, Any]) -> tuple[EventFilter, bool | None]:
    fields = dict(selection_filter)
    mapped = fields.pop("mapped", None)
    return EventFilter(**fields), mapped


# The options under "More options": folded unless they hold an error or a change.
MORE_OPTIONS = ("aggregation", "analysis", "percentile", "name_template", "description_template")
VALUE_LABELS = dict(ValueKind.choices)


@dataclass
class PickerRow:
    """One event of the picker's page, with what the admin chose for it."""

    event: SourceEvent
    checked: bool = False
    criterion: str = ""  # the per-event success criterion sent; "" for the selection's
    duration_unit: str = ""  # the unit when it measures time (lower may be inferred)
    inferred: str = ""  # e.g. "Lower (inferred from ms)" when that applies now
    # Ready to show, so that the template looks up little per row (a page of 200 rows).
    last_seen: str = ""  # "3 hours": one unit, so that the row stays on one line
    last_seen_iso: str = ""
    description: str = ""  # shortened; `title` holds more of it
    title: str = ""
    value_label: str = ""

    def __post_init__(self) -> None:
        event = self.event
        self.value_label = VALUE_LABELS.get(event.value_kind, event.value_kind)
        if event.description:
            self.description = Truncator(event.description).chars(140)
            self.title = Truncator(event.description).chars(300)
        if event.last_seen:
            self.last_seen_iso = event.last_seen.isoformat()


def _picker_rows(
    events: list[SourceEvent], choices_form: PlanChoicesForm | None, checked: frozenset[int]
) -> list[PickerRow]:
    now = timezone.now()
    if choices_form is None:
        return [PickerRow(event, last_seen=_since(event, now)) for event in events]
    criteria = choices_form.row_criteria()
    kind = choices_form["kind"].value()
    choices = Choices(
        kind=kind if kind in (AUTO, *MetricKind.values) else AUTO,
        durations_lower=bool(choices_form["durations_lower"].value()),
    )
    rows = []
    for event in events:
        row = PickerRow(event, event.pk in checked, criteria.get(event.pk, ""))
        row.last_seen = _since(event, now)
        if is_duration(event.unit):
            row.duration_unit = event.unit
            if choices.inferred_success(event, choices.kind_for(event)):
                row.inferred = f"Lower (inferred from {event.unit})"
        rows.append(row)
    return rows


def _since(event: SourceEvent, now: datetime) -> str:
    return timesince(event.last_seen, now, depth=1) if event.last_seen else ""


def _more_options_open(form: PlanChoicesForm | None) -> bool:
    if form is None or not form.is_bound:
        return False
    return any(name in form.errors for name in MORE_OPTIONS) or bool(
        set(form.changed_data) & set(MORE_OPTIONS)
    )


def _picker_page(
    request: WorkspaceRequest,
    *,
    filter_form: PickerFilterForm,
    page_number: Any,
    choices_form: PlanChoicesForm | None = None,
    units_note: str = "",
    checked: frozenset[int] = frozenset(),
    select_all: bool = False,
    status: int = 200,
) -> HttpResponse:
    event_filter, mapped = _event_filter(filter_form.selection_filter())
    events = picker_events(filter=event_filter, mapped=mapped, with_mappings=True)
    paginator = Paginator(events, filter_form.page_size())
    page = paginator.get_page(page_number)
    can_plan = request.membership.has_role(Role.ADMIN)
    if can_plan and choices_form is None:
        units, units_note = randomization_units()
        choices_form = PlanChoicesForm(units=units)
    pairs = filter_form.query_pairs()
    rows = _picker_rows(list(page.object_list), choices_form, checked)
    return render(
        request,
        "metrics/picker.html",
        {
            "filter_form": filter_form,
            "filter_pairs": pairs,
            "query": urlencode(pairs),
            # Narrowed by a filter (the page size alone narrows nothing).
            "filtered": any(name != "per_page" for name, _ in pairs),
            "page": page,
            "page_links": page.paginator.get_elided_page_range(page.number, on_each_side=2),
            "rows": rows,
            "can_plan": can_plan,
            "choices_form": choices_form,
            "more_options": [choices_form[name] for name in MORE_OPTIONS] if choices_form else [],
            "more_option_names": MORE_OPTIONS,
            "more_options_open": _more_options_open(choices_form),
            "units_note": units_note,
            # What the next "Review the plan" sends: the ticked rows of this page.
            "checked": checked,
            "selected_count": sum(row.checked for row in rows),
            "inferred_count": sum(bool(row.inferred) for row in rows),
            "select_all": select_all,
        },
        status=status,
    )


@workspace_view()
def picker(request: WorkspaceRequest) -> HttpResponse:
    return _picker_page(
        request, filter_form=PickerFilterForm(request.GET), page_number=_page(request.GET)
    )


def _page(params) -> int | None:
    # None (not a page number) shows the first page.
    return whole_number_or_none(params.get("page"), minimum=1, maximum=PAGE_MAX)


def _selection(
    filter_form: PickerFilterForm, raw_ids: list[str], select_all: bool
) -> tuple[dict[str, Any] | None, str]:
    """The plan's selection from the picker's POST, or the reason there is none."""
    if select_all:
        if filter_form.errors:
            return None, "The filter has errors; correct them before selecting every match."
        selection_filter = filter_form.selection_filter()
        event_filter, mapped = _event_filter(selection_filter)
        if not picker_events(filter=event_filter, mapped=mapped).exists():
            return None, "No event matches this filter, so there is nothing to plan."
        return {"filter": selection_filter}, ""
    try:
        ids = sorted({whole_number(raw, minimum=1, maximum=ID_MAX) for raw in raw_ids})
    except ValueError:
        return None, "The selection is not valid. Reload the page and select again."
    if not ids:
        return None, (
            "Select at least one event, or check “Select all events matching this filter”."
        )
    if SourceEvent.objects.filter(pk__in=ids).count() != len(ids):
        return None, "Some selected events no longer exist. Reload the page and select again."
    return {"ids": ids}, ""


@require_POST
@workspace_view(minimum_role=Role.ADMIN)
def plan_new(request: WorkspaceRequest) -> HttpResponse:
    filter_form = PickerFilterForm(request.POST)
    units, units_note = randomization_units()
    form = PlanChoicesForm(request.POST, units=units)
    raw_ids = request.POST.getlist("event")
    select_all = request.POST.get("select_all") == "all"
    valid = form.is_valid()
    selection, problem = _selection(filter_form, raw_ids, select_all)
    if problem:
        form.add_error(None, problem)
    if not valid or selection is None:
        # Everything typed and checked comes back as it was, with the reasons.
        checked = frozenset(
            number
            for number in (whole_number_or_none(raw, minimum=1, maximum=ID_MAX) for raw in raw_ids)
            if number is not None
        )
        return _picker_page(
            request,
            filter_form=filter_form,
            page_number=_page(request.POST),
            choices_form=form,
            units_note=units_note,
            checked=checked,
            select_all=select_all,
            status=400,
        )
    # Per-event choices only for the selected events (all of the page's for select all).
    choices = form.choices(event_ids=selection.get("ids"))
    plan = plan_create(actor=request.user, selection=selection, choices=choices)
    return redirect("planner:plan", slug=request.workspace.slug, plan_id=plan.pk)


# --- the review ----------------------------------------------------------------------


@dataclass
class RowView:
    """One plan row, ready to show: one line, with its fields folded away."""

    row: PlanRow
    kind_label: str
    summary: str  # the few fields that matter, for the row's one line
    fields: list[tuple[str, str]]
    changes: list[tuple[str, str, str]]


@dataclass
class RowGroup:
    """The rows of one action on this page; `count` is the whole plan's."""

    action: str
    count: int
    note: str
    rows: list[RowView]
    folded: bool  # shown closed until opened (unchanged rows)


GROUP_NOTES = {
    PlanAction.CREATE: "New metrics, created in LaunchDarkly.",
    PlanAction.UPDATE: "Metrics the connector manages whose fields change.",
    PlanAction.ADOPT: (
        "LaunchDarkly has a metric with this key already: the connector manages it from now on."
    ),
    PlanAction.UNCHANGED: "Already in LaunchDarkly as chosen: nothing is sent for these.",
    PlanAction.BLOCKED: "Left out: each says why.",
}


def _shown(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "—"
    return str(value)


def _analysis(body: dict[str, Any]) -> str:
    analysis = body.get("analysisType", Analysis.MEAN)
    if analysis == Analysis.PERCENTILE:
        return f"percentile {_shown(body.get('percentileValue'))}"
    return str(analysis)


def _row_view(row: PlanRow) -> RowView:
    body = row.body
    fields = [("Event key", body["eventKey"])]
    if body["isNumeric"]:
        fields.append(("Unit", _shown(body.get("unit"))))
        fields.append(("Aggregation", body["unitAggregationType"]))
        fields.append(("Analysis", _analysis(body)))
        summary = " · ".join(
            (_shown(body.get("unit")), body["unitAggregationType"], _analysis(body))
        )
    else:
        summary = body["unitAggregationType"]
    if body.get("successCriteria"):
        fields.append(("Success", body["successCriteria"]))
    fields.append(("Randomization", _shown(body["randomizationUnits"])))
    # Exactly the tags LaunchDarkly gets, the connector's own included.
    fields.append(("Tags", _shown(body["tags"])))
    if body.get("description"):
        fields.append(("Description", body["description"]))
    changes = [
        (field, _shown(actual), _shown(desired)) for field, (desired, actual) in row.changes.items()
    ]
    return RowView(row, MetricKind(row.mapping.kind).label, summary, fields, changes)


def _groups(rows: list[RowView], counts: dict[str, int], action: str) -> list[RowGroup]:
    by_action: dict[str, list[RowView]] = {}
    for view in rows:
        by_action.setdefault(view.row.action, []).append(view)
    return [
        RowGroup(
            action=name,
            count=counts[name],
            note=GROUP_NOTES[name],
            rows=by_action[name],
            # Unchanged rows stay folded, unless that is what the person asked to see.
            folded=name == PlanAction.UNCHANGED and action != name,
        )
        for name in PlanAction.ORDER
        if name in by_action
    ]


def _choices_summary(choices: Choices) -> list[tuple[str, str]]:
    kind = "Fit each event" if choices.kind == AUTO else MetricKind(choices.kind).label
    analysis = choices.analysis
    if analysis == Analysis.PERCENTILE:
        analysis = f"percentile {choices.percentile}"
    tags = ", ".join(choices.tags)
    tags = f"{tags} (and {MANAGED_TAG} on every metric)" if tags else MANAGED_TAG
    return [
        ("Kind", kind),
        ("Success criteria", choices.success_criteria),
        ("Aggregation (numeric)", choices.aggregation),
        ("Analysis (numeric)", analysis),
        ("Randomization units", _shown(choices.randomization_units)),
        ("Tags", tags),
        ("Name template", choices.name_template),
        ("Description template", choices.description_template or "—"),
    ]


@dataclass
class AppliedState:
    """What became of an applied plan: when, by whom, and its run as it is now."""

    at: datetime
    by: str
    run: SyncRun | None
    run_status: str  # "running, 4 of 12 sent" / "12 of 12 sent" / "10 of 12 sent, 2 failed"
    tone: str  # the message's class: success, warning, or plain while running


def _run_status(run: SyncRun) -> tuple[str, str]:
    progress = run_progress(run=run)
    counts = progress.counts
    failed = counts.get(ItemStatus.FAILED, 0) + counts.get(ItemStatus.CONFLICT, 0)
    cancelled = counts.get(ItemStatus.CANCELLED, 0)
    parts = [f"{counts.get(ItemStatus.DONE, 0)} of {progress.total} sent"]
    if failed:
        parts.append(f"{failed} failed")
    if cancelled:
        parts.append(f"{cancelled} cancelled")
    status = ", ".join(parts)
    if run.finished_at is None:
        return f"running, {status}", ""
    return status, "warning" if failed or cancelled else "success"


def _applied_state(plan: MetricPlan) -> AppliedState | None:
    if plan.applied_at is None:
        return None
    run = plan.sync_run
    if run is not None:
        applier = run.started_by
        status, tone = _run_status(run)
    else:  # nothing needed sending: no run, the audit log says who applied it
        audit = (
            AuditEvent.objects.filter(action=AuditAction.PLAN_APPLIED, target=f"plan {plan.pk}")
            .select_related("actor")
            .first()
        )
        applier = audit.actor if audit else None
        status, tone = "", "success"
    return AppliedState(
        at=plan.applied_at,
        by=applier.email if applier else "",
        run=run,
        run_status=status,
        tone=tone,
    )


@workspace_view(minimum_role=Role.ADMIN)
def plan_review(request: WorkspaceRequest, plan_id: int) -> HttpResponse:
    plan = get_object_or_404(
        MetricPlan.objects.select_related("created_by", "sync_run__started_by"), pk=plan_id
    )
    computed = plan_compute(plan=plan)
    action = request.GET.get("action", "")
    rows = computed.rows
    if action in PlanAction.ORDER:
        rows = [row for row in rows if row.action == action]
    else:
        action = ""
        # Grouped by action, in the summary's order (a stable sort keeps the events' order).
        rows = sorted(rows, key=lambda row: PlanAction.ORDER.index(row.action))
    page = Paginator(rows, PLAN_PAGE_SIZE).get_page(_page(request.GET))
    counts = computed.counts
    row_views = [_row_view(row) for row in page.object_list]
    # One page holds every group: the summary jumps to them; else it shows one group.
    one_page = not action and page.paginator.num_pages == 1
    return render(
        request,
        "metrics/plan.html",
        {
            "plan": plan,
            "computed": computed,
            "counts": [(name, counts[name]) for name in PlanAction.ORDER],
            "count_links": [
                (name, counts[name], f"#group-{name}" if one_page else f"?action={name}")
                for name in PlanAction.ORDER
            ],
            "actionable": sum(counts[a] for a in PlanAction.ORDER[:3]),
            "total": len(computed.rows),
            "action": action,
            "query": urlencode({"action": action}) if action else "",
            "page": page,
            "page_links": page.paginator.get_elided_page_range(page.number, on_each_side=2),
            "rows": row_views,
            "groups": _groups(row_views, counts, action),
            "applied": _applied_state(plan),
            "choices_summary": _choices_summary(Choices.from_json(plan.choices)),
            "selection_is_filter": "filter" in plan.selection,
        },
    )


def _after_apply_url(request: WorkspaceRequest, run_id: int | None) -> str:
    if run_id is not None:
        return reverse("sync:run", kwargs={"slug": request.workspace.slug, "run_id": run_id})
    return reverse("tenants:workspace", kwargs={"slug": request.workspace.slug})


@require_POST
@workspace_view(minimum_role=Role.ADMIN)
def plan_apply_view(request: WorkspaceRequest, plan_id: int) -> HttpResponse:
    plan = get_object_or_404(MetricPlan.objects, pk=plan_id)
    already = "This plan was applied already on {:%Y-%m-%d %H:%M} UTC; nothing new was started."
    if plan.applied_at is not None:
        messages.info(request, already.format(plan.applied_at))
        return redirect(_after_apply_url(request, plan.sync_run_id))
    try:
        run = plan_apply(plan=plan, actor=request.user)
    except PlanAlreadyApplied:
        plan.refresh_from_db()
        messages.info(request, already.format(plan.applied_at))
        return redirect(_after_apply_url(request, plan.sync_run_id))
    except PlanNotApplicable as exc:
        messages.error(request, f"{exc} Nothing was changed.")
        return redirect("planner:plan", slug=request.workspace.slug, plan_id=plan.pk)
    if run is None:
        messages.info(request, "Nothing to send: every selected metric is already up to date.")
        return redirect(_after_apply_url(request, None))
    noun = "metric" if run.total == 1 else "metrics"
    if run.queue_reached is False:
        messages.warning(request, f"Plan applied: {run.total} {noun} queued. {QUEUE_DOWN}")
    else:
        messages.success(request, f"Sync started: {run.total} {noun}.")
    return redirect(_after_apply_url(request, run.pk))
