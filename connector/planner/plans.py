"""Plans: from a selection of events and the picker's choices, the metrics that will
exist in LaunchDarkly and what the connector will do for each. Computing a plan
writes nothing; applying it stores the desired metrics and starts a sync run."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, fields
from functools import cached_property
from typing import Any

from django.db import transaction
from django.utils import timezone

from connector.connections.selectors import connection_of_workspace
from connector.metrics.desired import differences, fingerprint, metric_body
from connector.metrics.keys import metric_key_for
from connector.metrics.models import (
    Aggregation,
    Analysis,
    MetricKind,
    MetricMapping,
    MetricPlan,
    SuccessCriteria,
)
from connector.metrics.selectors import events_of_selection
from connector.metrics.services import mappings_store
from connector.sources.models import SourceEvent, ValueKind
from connector.sync.models import Action, RemoteMetric, SyncRun, Trigger
from connector.sync.services import sync_run_create
from tenants.models import AuditAction, User
from tenants.scope import current_tenant
from tenants.services import audit_record

AUTO = "auto"  # the kind that fits each event: numeric events numeric, others binary
# Units that measure time: for these, a smaller value is better (a faster page).
DURATION_UNITS = frozenset(
    {"ns", "us", "µs", "ms", "s", "sec", "secs", "second", "seconds", "millisecond"}
    | {"milliseconds", "msec", "min", "mins", "minute", "minutes", "h", "hr", "hour", "hours"}
)


def is_duration(unit: str) -> bool:
    return unit.strip().lower() in DURATION_UNITS


class PlanAction:
    CREATE = "create"
    UPDATE = "update"
    ADOPT = "adopt"
    UNCHANGED = "unchanged"
    BLOCKED = "blocked"
    ORDER = (CREATE, UPDATE, ADOPT, UNCHANGED, BLOCKED)


@dataclass(frozen=True)
class Choices:
    """What the person chose in the picker for the whole selection, and per event.

    `success_criteria` is the selection's; `durations_lower` makes numeric metrics of
    events measured in time (ms, s...) lower than baseline instead; `success_by_event`
    (event id, criterion) overrides both for single events. Plans saved before these
    two existed have neither, and compute as they always did."""

    kind: str = AUTO
    success_criteria: str = SuccessCriteria.HIGHER
    aggregation: str = Aggregation.AVERAGE
    analysis: str = Analysis.MEAN
    percentile: int | None = None
    randomization_units: tuple[str, ...] = ("user",)
    tags: tuple[str, ...] = ()
    name_template: str = "{name}"
    description_template: str = "{description}"
    durations_lower: bool = False
    success_by_event: tuple[tuple[int, str], ...] = ()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Choices:
        by_event = data.get("success_by_event") or {}
        return cls(
            **{
                **data,
                "randomization_units": tuple(data.get("randomization_units") or ("user",)),
                "tags": tuple(data.get("tags") or ()),
                "success_by_event": tuple(
                    sorted((int(event_id), value) for event_id, value in by_event.items())
                ),
            }
        )

    def to_json(self) -> dict[str, Any]:
        return {
            **{f.name: getattr(self, f.name) for f in fields(self)},
            "randomization_units": list(self.randomization_units),
            "tags": list(self.tags),
            # JSON object keys are strings: {"<event id>": "LowerThanBaseline"}.
            "success_by_event": {str(k): v for k, v in self.success_by_event},
        }

    def inferred_success(self, event: SourceEvent, kind: str) -> str:
        """The criterion inferred from the event, or "" when nothing is inferred."""
        if self.durations_lower and kind == MetricKind.NUMERIC and is_duration(event.unit):
            return SuccessCriteria.LOWER
        return ""

    @cached_property
    def _success_overrides(self) -> dict[int, str]:
        return dict(self.success_by_event)

    def success_for(self, event: SourceEvent, kind: str) -> str:
        if (chosen := self._success_overrides.get(event.pk)) is not None:
            return chosen
        return self.inferred_success(event, kind) or self.success_criteria

    def kind_for(self, event: SourceEvent) -> str:
        if self.kind != AUTO:
            return self.kind
        return MetricKind.NUMERIC if event.value_kind == ValueKind.NUMERIC else MetricKind.BINARY


@dataclass
class PlanRow:
    event: SourceEvent
    mapping: MetricMapping  # unsaved when new
    body: dict[str, Any]
    action: str
    reason: str = ""
    changes: dict[str, tuple] = field(default_factory=dict)


@dataclass
class Plan:
    rows: list[PlanRow]
    project_key: str
    problem: str = ""  # a reason that blocks the whole plan

    @property
    def counts(self) -> dict[str, int]:
        counted = Counter(row.action for row in self.rows)
        return {action: counted.get(action, 0) for action in PlanAction.ORDER}

    @property
    def actionable(self) -> list[PlanRow]:
        return [
            row
            for row in self.rows
            if row.action in (PlanAction.CREATE, PlanAction.UPDATE, PlanAction.ADOPT)
        ]


def _render(template: str, event: SourceEvent, kind: str) -> str:
    values = {
        "name": event.display_name,
        "key": event.key,
        "description": event.description,
        "kind": MetricKind(kind).label,
    }
    try:
        return template.format_map(values).strip()
    except (KeyError, ValueError, IndexError):
        return template  # the picker validates templates; a bad one is shown as typed


def selected_events(selection: dict[str, Any]) -> list[SourceEvent]:
    # The picker's filter also knows "already mapped", which EventFilter does not.
    # Only the fields a plan reads: a 1,000-event plan is computed on every review.
    return list(events_of_selection(selection).only(*_EVENT_FIELDS))


_EVENT_FIELDS = (
    "id",
    "tenant_id",
    "key",
    "name",
    "description",
    "value_kind",
    "unit",
    "removed_at",
)


def _blocked_reason(event: SourceEvent, mapping: MetricMapping, choices: Choices) -> str:
    if event.is_removed:
        return "The event was removed at the source."
    if mapping.kind == MetricKind.NUMERIC:
        if not mapping.unit:
            return "A numeric metric needs a unit; this event has none."
        if not mapping.success_criteria:
            return "A numeric metric needs success criteria."
        if mapping.analysis == Analysis.PERCENTILE and not (
            choices.percentile and 0 < choices.percentile < 100
        ):
            return "Percentile analysis needs a percentile between 1 and 99."
    return ""


def plan_compute(*, plan: MetricPlan) -> Plan:
    """Every selected event with the metric it will have, and the action. No writes."""
    connection = connection_of_workspace()
    project_key = connection.project_key if connection else ""
    choices = Choices.from_json(plan.choices)
    events = selected_events(plan.selection)
    event_ids = [event.pk for event in events]

    existing = {
        (m.source_event_id, m.kind): m
        for m in MetricMapping.objects.filter(source_event_id__in=event_ids)
    }
    wanted = [(event, choices.kind_for(event)) for event in events]
    keys = {
        (event.pk, kind): (
            existing[(event.pk, kind)].metric_key
            if (event.pk, kind) in existing
            else metric_key_for(event.key, kind)
        )
        for event, kind in wanted
    }
    # Clash rule: a new key already used by another event's metric, or by two events
    # of this plan, gets the longer digest form.
    taken = {
        (m.metric_key): m.source_event_id
        for m in MetricMapping.objects.filter(
            project_key=project_key, metric_key__in=set(keys.values())
        )
    }
    seen: Counter[str] = Counter(keys.values())
    for (event_id, kind), key in list(keys.items()):
        if (event_id, kind) in existing:
            continue
        if seen[key] > 1 or taken.get(key, event_id) != event_id:
            event = next(e for e, _ in wanted if e.pk == event_id)
            keys[(event_id, kind)] = metric_key_for(event.key, kind, digest_length=16)
    remote = {
        r.key: r
        for r in RemoteMetric.objects.filter(project_key=project_key, key__in=set(keys.values()))
    }

    rows = []
    for event, kind in wanted:
        current = existing.get((event.pk, kind))
        mapping = _desired_mapping(event, kind, keys[(event.pk, kind)], choices, project_key)
        if connection is not None:
            mapping.maintainer_id = connection.member_id
        body = metric_body(mapping, event_key=event.key)
        mapping.desired_hash = fingerprint(body)
        row = PlanRow(event=event, mapping=mapping, body=body, action=PlanAction.CREATE)
        if reason := _blocked_reason(event, mapping, choices):
            row.action, row.reason = PlanAction.BLOCKED, reason
        elif current is not None:
            # The metric as last stored, before the new choices are merged into it.
            previous = metric_body(current, event_key=event.key)
            row.mapping = _merged(current, mapping)
            if current.applied_hash == mapping.desired_hash:
                row.action = PlanAction.UNCHANGED
            else:
                row.action = PlanAction.UPDATE
                row.changes = differences(body, previous)
        elif mapping.metric_key in remote:
            row.action = PlanAction.ADOPT
            row.reason = "A metric with this key exists in LaunchDarkly" + (
                "."
                if remote[mapping.metric_key].fingerprint == mapping.desired_hash
                else "; its fields will be updated to these."
            )
        rows.append(row)

    problem = ""
    if connection is None or not connection.is_usable:
        problem = "Connect LaunchDarkly first: metrics are created through that connection."
    elif not project_key:
        problem = "Choose the LaunchDarkly project for metrics first."
    return Plan(rows=rows, project_key=project_key, problem=problem)


def _desired_mapping(
    event: SourceEvent, kind: str, key: str, choices: Choices, project_key: str
) -> MetricMapping:
    numeric = kind == MetricKind.NUMERIC
    return MetricMapping(
        tenant_id=current_tenant().pk,
        source_event=event,
        kind=kind,
        project_key=project_key,
        metric_key=key,
        name=_render(choices.name_template, event, kind)[:200] or event.key,
        description=_render(choices.description_template, event, kind),
        unit=event.unit if numeric else "",
        success_criteria=choices.success_for(event, kind),
        unit_aggregation=choices.aggregation
        if numeric
        else (Aggregation.SUM if kind == MetricKind.COUNT else Aggregation.AVERAGE),
        analysis=choices.analysis if numeric else Analysis.MEAN,
        percentile=choices.percentile
        if numeric and choices.analysis == Analysis.PERCENTILE
        else None,
        randomization_units=list(choices.randomization_units),
        tags=sorted(set(choices.tags)),
    )


_CHOSEN_FIELDS = (
    # A mapping follows the connection to the project chosen now (a change of project or
    # account forgets what the old one held: sync_target_changed).
    "project_key",
    "name",
    "description",
    "unit",
    "success_criteria",
    "unit_aggregation",
    "analysis",
    "percentile",
    "randomization_units",
    "tags",
    "maintainer_id",
    "desired_hash",
)


def _merged(current: MetricMapping, desired: MetricMapping) -> MetricMapping:
    """The existing mapping with the newly chosen fields (its key and id stay)."""
    for name in _CHOSEN_FIELDS:
        setattr(current, name, getattr(desired, name))
    return current


_SYNC_ACTION = {
    PlanAction.CREATE: Action.CREATE,
    PlanAction.UPDATE: Action.UPDATE,
    PlanAction.ADOPT: Action.ADOPT,
}


@transaction.atomic
def plan_apply(*, plan: MetricPlan, actor: User) -> SyncRun | None:
    """Store the plan's desired metrics and start a sync run for what must change.
    Recomputed here, so it applies the catalog as it is now, not as it was shown."""
    # Claim the plan first: a second apply (a double click, two tabs) finds it taken,
    # even when both run at once, and the whole apply rolls back with any error below.
    now = timezone.now()
    if not MetricPlan.objects.filter(pk=plan.pk, applied_at__isnull=True).update(applied_at=now):
        raise PlanAlreadyApplied("This plan was applied already; nothing new was started.")
    computed = plan_compute(plan=plan)
    if computed.problem:
        raise PlanNotApplicable(computed.problem)
    to_sync = computed.actionable
    new = [row.mapping for row in to_sync if row.mapping.pk is None]
    changed = [row.mapping for row in to_sync if row.mapping.pk is not None]
    mappings_store(new=new, changed=changed, fields=_CHOSEN_FIELDS)

    run = sync_run_create(
        work=((row.mapping, _SYNC_ACTION[row.action]) for row in to_sync),
        trigger=Trigger.PLAN,
        actor=actor,
    )
    plan.applied_at = now
    plan.sync_run = run
    plan.save(update_fields=["applied_at", "sync_run"])
    audit_record(
        actor=actor,
        action=AuditAction.PLAN_APPLIED,
        target=f"plan {plan.pk}",
        details={**computed.counts, "run": run.pk if run else None},
    )
    return run


class PlanNotApplicable(Exception):
    """The plan cannot be applied as a whole; the message says why, for the user."""


class PlanAlreadyApplied(PlanNotApplicable):
    """The plan was applied before; applying it again starts nothing."""


def plan_create(*, actor: User, selection: dict[str, Any], choices: Choices) -> MetricPlan:
    """Save a selection and its choices for review. Nothing is sent or stored beyond it."""
    return MetricPlan.objects.create(
        created_by=actor, selection=selection, choices=choices.to_json()
    )
