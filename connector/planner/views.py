"""The event picker, the plan review and applying a plan.

Members may browse the catalog; admins choose what becomes a metric. A plan is saved
before anything is sent, shown with what will happen to each event, and applied once.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
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
from connector.connections.services import (
    ConnectionRefused,
    client_for,
    connection_register_randomization_unit,
)
from connector.inputs import ID_MAX, PAGE_MAX, whole_number, whole_number_or_none
from connector.metrics.desired import MANAGED_TAG
from connector.metrics.keys import group_key_for
from connector.metrics.models import (
    Analysis,
    EventDefault,
    GroupKind,
    MappingStatus,
    MetricKind,
    MetricMapping,
    MetricPlan,
)
from connector.metrics.selectors import events_of_selection, metric_conventions, picker_events
from connector.planner.forms import (
    ConventionsForm,
    FunnelStep,
    GroupForm,
    PickerFilterForm,
    PlanChoicesForm,
    group_initial,
    group_initial_from_post,
    steps_from_post,
    steps_moved,
)
from connector.planner.group_plans import GroupRow
from connector.planner.plans import (
    ADOPT_PREFIX,
    ALONGSIDE,
    AUTO,
    Choices,
    PlanAction,
    PlanAlreadyApplied,
    PlanNotApplicable,
    PlanRow,
    is_duration,
    plan_apply,
    plan_choose_by_hand,
    plan_compute,
    plan_create,
    plan_groups_set,
    selected_events,
)
from connector.planner.specs import MetricSpec, spec_label
from connector.sources.models import SourceEvent, ValueKind
from connector.sources.selectors import EventFilter
from connector.sync.models import ItemStatus, SyncRun
from connector.sync.remote import remote_refresh_for_events
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


@dataclass(frozen=True)
class UnitOffer:
    """The randomization units a metric may use: LaunchDarkly accepts only those
    registered in the project's experimentation settings (getExperimentationSettings),
    and refuses others with 400 `Randomization unit "x" not found in project settings`.
    `unregistered` are the project's other context kinds, which an admin may register."""

    units: list[str]
    default: str
    unregistered: list[str] = field(default_factory=list)
    note: str = ""


def _units_cache_key(connection: LaunchDarklyConnection) -> str:
    return f"planner:units:{connection.pk}:{connection.project_key}"


def randomization_units() -> UnitOffer:
    """The connected project's registered units, its default one, and the context
    kinds it could register. Cached per connection and project; any LaunchDarkly
    trouble falls back to `user` with a note: the picker works without LaunchDarkly."""
    connection = connection_of_workspace()
    if connection is None or not connection.is_usable or not connection.project_key:
        return UnitOffer(
            DEFAULT_UNITS,
            DEFAULT_UNITS[0],
            note="Connect LaunchDarkly and choose a project to offer its randomization "
            "units; until then only user is offered.",
        )
    key = _units_cache_key(connection)
    offer = cache.get(key)
    if offer is None:
        try:
            client = client_for(connection)
            settings = client.get_experimentation_settings(connection.project_key)
            kinds = client.list_context_kinds(connection.project_key)
        except Exception:
            log.warning("reading the randomization units of connection %s failed", connection.pk)
            return UnitOffer(
                DEFAULT_UNITS,
                DEFAULT_UNITS[0],
                note="LaunchDarkly's randomization units could not be read just now, so only "
                "user is offered. Reload the page to try again.",
            )
        offer = _unit_offer(settings, kinds)
        cache.set(key, offer, CONTEXT_KINDS_TTL_S)
    return offer


def _unit_offer(settings: dict[str, Any], kinds: list[dict[str, Any]]) -> UnitOffer:
    registered = [
        unit
        for unit in settings.get("randomizationUnits") or []
        if isinstance(unit, dict) and unit.get("randomizationUnit") and not unit.get("_hidden")
    ]
    units = sorted({str(unit["randomizationUnit"]) for unit in registered})
    default = next(
        (str(u["randomizationUnit"]) for u in registered if u.get("default")),
        units[0] if units else "",
    )
    others = sorted(
        {str(kind["key"]) for kind in kinds if kind.get("key") and not kind.get("archived")}
        - set(units)
    )
    if not units:
        return UnitOffer(
            DEFAULT_UNITS,
            DEFAULT_UNITS[0],
            unregistered=others,
            note="The project has no randomization units in its experimentation settings; "
            "register one below, or LaunchDarkly will refuse the metrics.",
        )
    return UnitOffer(units, default, unregistered=others)


def forget_units(connection: LaunchDarklyConnection) -> None:
    cache.delete(_units_cache_key(connection))


# --- the picker ----------------------------------------------------------------------


def _event_filter(selection_filter: dict[str, Any]) -> tuple[EventFilter, bool | None]:
    fields = dict(selection_filter)
    mapped = fields.pop("mapped", None)
    return EventFilter(**fields), mapped


# The options under "More options": folded unless they hold an error or a change.
MORE_OPTIONS = (
    "aggregation",
    "analysis",
    "percentile",
    "event_default",
    "name_template",
    "description_template",
)
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
    # Property filters typed for the event, each one more metric; and why any is refused.
    filters: list[str] = field(default_factory=list)
    filter_errors: list[str] = field(default_factory=list)
    properties: list[tuple[str, str]] = field(default_factory=list)  # (name, type)

    def __post_init__(self) -> None:
        event = self.event
        self.value_label = VALUE_LABELS.get(event.value_kind, event.value_kind)
        self.properties = sorted((event.properties or {}).items())
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
    filters = choices_form.row_filters()
    filter_errors = getattr(choices_form, "filter_errors", {})
    kind = choices_form["kind"].value()
    choices = Choices(
        kind=kind if kind in (AUTO, *MetricKind.values) else AUTO,
        durations_lower=bool(choices_form["durations_lower"].value()),
    )
    rows = []
    for event in events:
        row = PickerRow(event, event.pk in checked, criteria.get(event.pk, ""))
        row.last_seen = _since(event, now)
        row.filters = filters.get(event.pk, [])
        row.filter_errors = filter_errors.get(event.pk, [])
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
    offer: UnitOffer | None = None,
    checked: frozenset[int] = frozenset(),
    select_all: bool = False,
    status: int = 200,
) -> HttpResponse:
    event_filter, mapped = _event_filter(filter_form.selection_filter())
    events = picker_events(filter=event_filter, mapped=mapped, with_mappings=True)
    paginator = Paginator(events, filter_form.page_size())
    page = paginator.get_page(page_number)
    can_plan = request.membership.has_role(Role.ADMIN)
    if can_plan and offer is None:
        offer = randomization_units()
    if can_plan and choices_form is None:
        assert offer is not None
        choices_form = PlanChoicesForm(units=offer.units, default_unit=offer.default)
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
            "units_note": offer.note if offer else "",
            "unregistered_units": offer.unregistered if offer else [],
            "project_key": connection.project_key
            if (connection := connection_of_workspace())
            else "",
            # What the next "Review the plan" sends: the ticked rows of this page.
            "checked": checked,
            "selected_count": sum(row.checked for row in rows),
            "inferred_count": sum(bool(row.inferred) for row in rows),
            "select_all": select_all,
            "conventions": metric_conventions() if can_plan else None,
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
def register_unit(request: WorkspaceRequest) -> HttpResponse:
    """Register a context kind as a randomization unit of the connected project, only
    with the admin's explicit consent: it changes LaunchDarkly for every experiment of
    the project, not only for the connector."""
    back = redirect("planner:picker", slug=request.workspace.slug)
    connection = connection_of_workspace()
    kind = request.POST.get("context_kind", "")
    offer = randomization_units()
    if connection is None or not connection.is_usable or kind not in offer.unregistered:
        messages.error(request, "That context kind cannot be registered. Reload the page.")
        return back
    if request.POST.get("consent") != "1":
        messages.error(
            request,
            f"Nothing was changed: tick the box to confirm that {kind} should become a "
            "randomization unit of the project in LaunchDarkly.",
        )
        return back
    try:
        connection_register_randomization_unit(
            actor=request.user, connection=connection, context_kind=kind
        )
    except ConnectionRefused as exc:
        messages.error(request, str(exc))
        return back
    forget_units(connection)
    messages.success(
        request,
        f"{kind} is now a randomization unit of project {connection.project_key} in "
        "LaunchDarkly, and can be chosen for metrics.",
    )
    return back


@require_POST
@workspace_view(minimum_role=Role.ADMIN)
def plan_new(request: WorkspaceRequest) -> HttpResponse:
    filter_form = PickerFilterForm(request.POST)
    offer = randomization_units()
    form = PlanChoicesForm(request.POST, units=offer.units, default_unit=offer.default)
    raw_ids = request.POST.getlist("event")
    select_all = request.POST.get("select_all") == "all"
    form.is_valid()
    selection, problem = _selection(filter_form, raw_ids, select_all)
    if problem:
        form.add_error(None, problem)
    filtered = _checked_filters(form, selection)
    if not form.is_valid() or selection is None:
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
            offer=offer,
            checked=checked,
            select_all=select_all,
            status=400,
        )
    # Per-event choices only for the selected events (all of the page's for select all).
    choices = form.choices(event_ids=selection.get("ids"), filtered=filtered)
    plan = plan_create(actor=request.user, selection=selection, choices=choices)
    return redirect("planner:plan", slug=request.workspace.slug, plan_id=plan.pk)


def _checked_filters(
    form: PlanChoicesForm, selection: dict[str, Any] | None
) -> tuple[tuple[str, str], ...]:
    """The picker rows' filters, each parsed against its event's properties now: a
    refused one is reported in its row and the plan is not saved."""
    ids = set(form.row_filters())
    if not ids:
        return ()
    events = {
        event.pk: event
        for event in SourceEvent.objects.filter(pk__in=ids).only("id", "key", "properties")
    }
    selected: set[int] | None = None
    if selection is not None:
        selected = set(
            events_of_selection(selection).filter(pk__in=ids).values_list("pk", flat=True)
        )
    return form.check_filters(events=events, selected=selected)


# --- the review ----------------------------------------------------------------------


@dataclass
class RowView:
    """One plan row, ready to show: one line, with its fields folded away."""

    row: PlanRow
    kind_label: str
    summary: str  # the few fields that matter, for the row's one line
    fields: list[tuple[str, str]]
    changes: list[tuple[str, str, str]]
    by_hand_options: list[tuple[str, str]]
    set_label: str = ""  # which metric of a metric set: "conversion rate", "p90"...


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
    PlanAction.RESTORE: "Archived in LaunchDarkly: applying un-archives and updates them.",
    PlanAction.ADOPT: (
        "A metric that exists in LaunchDarkly already: the connector manages it from now on."
    ),
    PlanAction.BY_HAND: (
        "A metric made by hand in LaunchDarkly measures the event: choose to adopt it or to "
        "create ours alongside. Until you choose, nothing is sent for these."
    ),
    PlanAction.ARCHIVE: (
        "Managed metrics the metrics-as-code file no longer names: archived in LaunchDarkly, "
        "their results kept."
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


def _set_label(row: PlanRow, metric_set: bool) -> str:
    """Which metric of its event's set a row is, as its name says it ("" outside a set)."""
    set_part = next(
        (part for part in row.mapping.variant.split("-") if re.fullmatch(r"p\d+", part)), ""
    )
    if not (metric_set or set_part) or row.mapping.kind not in MetricKind.values:
        return ""
    return spec_label(MetricSpec(kind=row.mapping.kind, set_part=set_part), row.mapping.kind)


def _row_view(row: PlanRow, *, metric_set: bool = False) -> RowView:
    body = row.body
    fields = [("Event key", body["eventKey"])]
    if row.filter_text:
        fields.append(("Where", row.filter_text))
    if body["isNumeric"]:
        fields.append(("Unit", _shown(body.get("unit"))))
        fields.append(("Aggregation", body["unitAggregationType"]))
        fields.append(("Analysis", _analysis(body)))
        left_out = (body.get("eventDefault") or {}).get("disabled")
        fields.append(("Units without events", "left out" if left_out else "count as 0"))
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
    options = _by_hand_options(row) if row.action == PlanAction.BY_HAND else []
    return RowView(
        row,
        MetricKind(row.mapping.kind).label,
        summary,
        fields,
        changes,
        options,
        set_label=_set_label(row, metric_set),
    )


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
    filters = "; ".join(f"{event_key} where {text}" for event_key, text in choices.filtered)
    return [
        ("Kind", kind),
        (
            "Metric set",
            "yes: conversion rate + count, or mean + p90, per event"
            if choices.metric_set
            else "no",
        ),
        ("Filtered metrics", filters or "—"),
        ("Success criteria", choices.success_criteria),
        ("Aggregation (numeric)", choices.aggregation),
        ("Analysis (numeric)", analysis),
        ("Randomization units", _shown(choices.randomization_units)),
        (
            "Units without events (numeric)",
            "fit each event"
            if choices.event_default == AUTO
            else EventDefault(choices.event_default).label,
        ),
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


REMOTE_REFRESH_TTL_S = 120


def _refresh_remote(plan: MetricPlan) -> str:
    """Before a plan is shown for applying, read LaunchDarkly's metrics on its events
    (at most every REMOTE_REFRESH_TTL_S per plan): hand-made twins, archived metrics
    and use must be as they are now. Returns a note when that was not possible."""
    connection = connection_of_workspace()
    if plan.applied_at is not None or connection is None or not connection.is_usable:
        return ""
    if not connection.project_key:
        return ""
    marker = remote_marker(plan, connection)
    if cache.get(marker):
        return ""
    keys = [event.key for event in selected_events(plan.selection)]
    try:
        note = remote_refresh_for_events(connection=connection, event_keys=keys)
    except Exception:  # the plan must still be shown, from the last resync's snapshot
        log.exception("refreshing LaunchDarkly's metrics for plan %s failed", plan.pk)
        note = "LaunchDarkly could not be asked about these events just now."
    if not note:
        cache.set(marker, True, REMOTE_REFRESH_TTL_S)
    return note


def remote_marker(plan: MetricPlan, connection: LaunchDarklyConnection) -> str:
    """Set while the plan's view of LaunchDarkly is fresh enough not to read again."""
    return f"planner:remote:{plan.pk}:{connection.pk}:{connection.project_key}"


def _by_hand_options(row: PlanRow) -> list[tuple[str, str]]:
    options = [
        (f"{ADOPT_PREFIX}{twin.key}", f"Adopt “{twin.name}” ({twin.key})") for twin in row.hand_made
    ]
    return [*options, (ALONGSIDE, "Create ours alongside it")]


@workspace_view(minimum_role=Role.ADMIN)
def plan_review(request: WorkspaceRequest, plan_id: int) -> HttpResponse:
    plan = get_object_or_404(
        MetricPlan.objects.select_related("created_by", "sync_run__started_by"), pk=plan_id
    )
    remote_note = _refresh_remote(plan)
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
    choices = Choices.from_json(plan.choices)
    row_views = [_row_view(row, metric_set=choices.metric_set) for row in page.object_list]
    group_counts = computed.group_counts
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
            "actionable": sum(counts[a] for a in PlanAction.SENT),
            "remote_note": remote_note,
            "in_use": computed.in_use,
            "total": len(computed.rows),
            "action": action,
            "query": urlencode({"action": action}) if action else "",
            "page": page,
            "page_links": page.paginator.get_elided_page_range(page.number, on_each_side=2),
            "rows": row_views,
            "groups": _groups(row_views, counts, action),
            "applied": _applied_state(plan),
            "choices_summary": _choices_summary(choices),
            "selection_is_filter": "filter" in plan.selection,
            # A metrics-as-code file's plan: the file is its source, not the picker.
            "from_file": choices.prune,
            "metric_groups": _metric_group_views(computed.groups, list(choices.groups)),
            "group_counts": [(name, group_counts[name]) for name in PlanAction.GROUP_ORDER],
            "actionable_groups": len(computed.actionable_groups),
        },
    )


@require_POST
@workspace_view(minimum_role=Role.ADMIN)
def plan_choose_view(request: WorkspaceRequest, plan_id: int) -> HttpResponse:
    """The review's choices for events that hand-made metrics already measure."""
    plan = get_object_or_404(MetricPlan.objects, pk=plan_id)
    back = redirect("planner:plan", slug=request.workspace.slug, plan_id=plan.pk)
    if plan.applied_at is not None:
        messages.info(request, "This plan was applied already; its choices can no longer change.")
        return back
    decisions: dict[int, str] = {}
    for name in request.POST:
        if not name.startswith(BY_HAND_PREFIX):
            continue
        value = request.POST.get(name, "")
        event_id = whole_number_or_none(name[len(BY_HAND_PREFIX) :], minimum=1, maximum=ID_MAX)
        if event_id is None or not (value in ("", ALONGSIDE) or value.startswith(ADOPT_PREFIX)):
            messages.error(request, "The choices are not valid. Reload the page and choose again.")
            return back
        decisions[event_id] = value[:200]
    plan_choose_by_hand(plan=plan, decisions=decisions)
    chosen = sum(bool(v) for v in decisions.values())
    messages.success(request, f"Saved: {chosen} choice{'s' if chosen != 1 else ''}.")
    return back


BY_HAND_PREFIX = "by_hand_"


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
        run = plan_apply(
            plan=plan, actor=request.user, confirm_in_use=request.POST.get("confirm_in_use") == "1"
        )
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
    groups = run.items.filter(group__isnull=False).count()
    metrics = run.total - groups
    sent = f"{metrics} metric{'s' if metrics != 1 else ''}"
    if groups:
        sent += f" and {groups} metric group{'s' if groups != 1 else ''}"
    if run.queue_reached is False:
        messages.warning(request, f"Plan applied: {sent} queued. {QUEUE_DOWN}")
    else:
        messages.success(request, f"Sync started: {sent}.")
    return redirect(_after_apply_url(request, run.pk))


# --- metric groups -------------------------------------------------------------------


@dataclass
class MetricGroupView:
    """One metric group of the plan, ready to show."""

    row: GroupRow
    kind_label: str
    members: list[tuple[str, str]]  # (metric key, name in the group), in order
    changes: list[tuple[str, str, str]]
    # The key the builder edits or removes it by; "" when the plan did not choose it
    # (a group a metrics-as-code file no longer names, deleted).
    spec_key: str


def spec_key(spec: dict[str, Any]) -> str:
    """A group spec's key as the plan computes it: given, or made from its name."""
    return str(spec.get("key") or group_key_for(str(spec.get("name") or "").strip()))


def _members_shown(value: Any) -> str:
    if isinstance(value, list) and all(isinstance(member, dict) for member in value):
        return ", ".join(
            f"{member.get('key')} ({member.get('nameInGroup') or '—'})" for member in value
        )
    return _shown(value)


def _metric_group_views(rows: list[GroupRow], specs: list[dict[str, Any]]) -> list[MetricGroupView]:
    # group_rows answers one row per spec, in order, then the groups a file deletes.
    views = []
    for index, row in enumerate(rows):
        members = [(str(m["key"]), str(m.get("nameInGroup") or "")) for m in row.body["metrics"]]
        changes = [
            (name, _members_shown(actual), _members_shown(desired))
            for name, (desired, actual) in row.changes.items()
        ]
        views.append(
            MetricGroupView(
                row=row,
                kind_label=GroupKind(row.group.kind).label
                if row.group.kind in GroupKind.values
                else row.group.kind,
                members=members,
                changes=changes,
                spec_key=spec_key(specs[index]) if index < len(specs) else "",
            )
        )
    return views


@dataclass
class StepView:
    """A funnel step of the builder, with the properties its event's filter may test."""

    index: int
    step: FunnelStep
    properties: str


def _properties_text(event: SourceEvent | None) -> str:
    if event is None or not event.properties:
        return ""
    return ", ".join(f"{name} ({kind})" for name, kind in sorted(event.properties.items()))


@dataclass
class GroupBuilder:
    """What the builder offers for one plan: its events (funnel steps), its metrics
    (standard groups), the tags they carry, and the groups it holds already."""

    plan: MetricPlan
    specs: list[dict[str, Any]]
    editing: dict[str, Any] | None
    events: dict[str, SourceEvent] = field(default_factory=dict)
    metric_choices: list[tuple[str, str]] = field(default_factory=list)
    tags_known: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, plan: MetricPlan, specs: list[dict[str, Any]], editing: Any) -> GroupBuilder:
        computed = plan_compute(plan=plan)
        offered = [
            row.mapping
            for row in computed.rows
            if row.action not in (PlanAction.ARCHIVE, PlanAction.BLOCKED)
        ]
        events = {row.event.key: row.event for row in computed.rows}
        # A group may also name the workspace's metrics planned before (group_plans
        # finds them too), so that a funnel can reuse them.
        planned = {m.metric_key for m in offered}
        for mapping in (
            MetricMapping.objects.filter(project_key=computed.project_key)
            .exclude(status__in=(MappingStatus.DELETED, MappingStatus.ARCHIVED))
            .exclude(metric_key__in=planned)
            .select_related("source_event")
            .order_by("metric_key")
        ):
            offered.append(mapping)
            events.setdefault(mapping.source_event.key, mapping.source_event)
        choices = [(m.metric_key, f"{m.name} — {m.metric_key}") for m in offered]
        offered_keys = {key for key, _ in choices}
        for member in (editing or {}).get("metrics") or []:
            if isinstance(member, str) and member not in offered_keys:
                choices.append((member, member))  # a workspace metric a file named
        return cls(
            plan=plan,
            specs=specs,
            editing=editing,
            events=dict(sorted(events.items())),
            metric_choices=choices,
            tags_known=sorted({tag for m in offered for tag in m.tags or []}),
        )

    def form(self, *args: Any, steps: list[FunnelStep], **kwargs: Any) -> GroupForm:
        return GroupForm(
            *args,
            events=self.events,
            metric_choices=self.metric_choices,
            taken_keys={spec_key(spec) for spec in self.specs if spec is not self.editing},
            steps=steps,
            **kwargs,
        )

    def page(self, request: WorkspaceRequest, form: GroupForm, status: int = 200) -> HttpResponse:
        return render(
            request,
            "metrics/groups.html",
            {
                "plan": self.plan,
                "form": form,
                "kind": form.group_kind,
                "editing": self.editing,
                "original": spec_key(self.editing) if self.editing else "",
                "groups": [(spec_key(spec), spec) for spec in self.specs],
                "steps": [
                    StepView(index, step, _properties_text(self.events.get(step.event)))
                    for index, step in enumerate(form.steps)
                ],
                "event_options": [
                    (key, event.display_name, _properties_text(event))
                    for key, event in self.events.items()
                ],
                "tags_known": self.tags_known,
            },
            status=status,
        )


@workspace_view(minimum_role=Role.ADMIN)
def plan_groups(request: WorkspaceRequest, plan_id: int) -> HttpResponse:
    """The group builder: a funnel from the plan's events in order, or a standard group
    of chosen metrics or of a tag. Step buttons post the form back re-ordered, so it
    works without JavaScript; only saving checks it and changes the plan."""
    plan = get_object_or_404(MetricPlan.objects, pk=plan_id)
    review = reverse("planner:plan", kwargs={"slug": request.workspace.slug, "plan_id": plan.pk})
    if plan.applied_at is not None:
        messages.info(request, "This plan was applied already; its groups can no longer change.")
        return redirect(review)
    specs = list(Choices.from_json(plan.choices).groups)
    params = request.POST if request.method == "POST" else request.GET
    original = str(params.get("original") or params.get("edit") or "")
    editing = next((spec for spec in specs if spec_key(spec) == original), None)
    if original and editing is None:
        messages.error(request, "That group is no longer in the plan. Reload the review.")
        return redirect(review)
    op = request.POST.get("op", "save") if request.method == "POST" else ""
    if op == "delete" and editing is not None:
        plan_groups_set(plan=plan, groups=[spec for spec in specs if spec is not editing])
        messages.success(request, f"Removed the group “{editing.get('name')}” from the plan.")
        return redirect(f"{review}#metric-groups")

    builder = GroupBuilder.of(plan, specs, editing)
    if request.method != "POST":
        if editing is not None:
            initial = group_initial(editing)
            steps = [FunnelStep.from_spec(m) for m in editing.get("metrics") or []]
        else:
            kind = request.GET.get("kind")
            initial = {"kind": kind if kind in GroupKind.values else GroupKind.FUNNEL}
            steps = [FunnelStep(), FunnelStep()]
        form = builder.form(initial=initial, steps=steps)
        if form.group_kind != GroupKind.FUNNEL:
            form.steps = []
        return builder.page(request, form)

    steps = steps_from_post(request.POST)
    if op != "save":  # a step button: shown again re-ordered, nothing checked or saved
        moved = steps_moved(steps, op)
        return builder.page(
            request, builder.form(initial=group_initial_from_post(request.POST), steps=moved)
        )
    form = builder.form(request.POST, steps=steps)
    if not form.is_valid():
        return builder.page(request, form, status=400)
    spec = form.spec(previous=editing)
    chosen = [spec if old is editing else old for old in specs]
    if editing is None:
        chosen.append(spec)
    added = plan_groups_set(plan=plan, groups=chosen)
    label = "funnel" if spec["kind"] == GroupKind.FUNNEL else "metric group"
    message = f"Saved the {label} “{spec['name']}” to the plan."
    if added:
        message += " Also planned, for its steps: " + "; ".join(
            f"{event_key} where {text}" for event_key, text in added
        )
        message += "."
    messages.success(request, message)
    return redirect(f"{review}#metric-groups")


# --- the workspace's conventions -----------------------------------------------------

PREVIEW_EVENT = SourceEvent(key="checkout_completed", name="Checkout completed")


@workspace_view(minimum_role=Role.ADMIN)
def conventions(request: WorkspaceRequest) -> HttpResponse:
    """How every metric and group the workspace plans is named and tagged."""
    form = ConventionsForm(request.POST or None, instance=metric_conventions())
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Naming conventions saved: plans reviewed from now on use them.")
        return redirect("planner:conventions", slug=request.workspace.slug)
    instance = metric_conventions()
    event = SourceEvent.objects.order_by("key").first() or PREVIEW_EVENT
    return render(
        request,
        "metrics/conventions.html",
        {
            "form": form,
            "preview_event": event,
            "preview": _name_preview(instance.name_template or "{name}", event),
        },
        status=400 if form.is_bound else 200,
    )


def _name_preview(template: str, event: SourceEvent) -> list[tuple[str, str]]:
    """What the saved template makes of one event's metrics, as plans name them."""
    values = {
        "name": event.display_name,
        "event": event.key,
        "kind": MetricKind(MetricKind.BINARY).label,
        "description": event.description,
        "variant": "",
    }

    def named(filter_text: str) -> str:
        try:
            name = template.format_map({**values, "filter": filter_text}).strip()
        except (KeyError, ValueError, IndexError):
            name = template
        if filter_text and "{filter}" not in template:
            name = f"{name} where {filter_text}"
        return name

    return [
        ("Its conversion metric", named("")),
        ("A filtered one (plan = pro)", named("plan = pro")),
    ]
