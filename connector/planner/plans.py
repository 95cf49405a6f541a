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
from connector.metrics.desired import (
    default_event_default,
    differences,
    fingerprint,
    is_duration_unit,
    metric_body,
)
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
from connector.sync.selectors import sync_settings
from connector.sync.services import sync_run_create
from tenants.models import AuditAction, User
from tenants.scope import current_tenant
from tenants.services import audit_record

AUTO = "auto"  # the kind that fits each event: numeric events numeric, others binary


def is_duration(unit: str) -> bool:
    """A unit of time: for these a smaller value is better (a faster page)."""
    return is_duration_unit(unit)


class PlanAction:
    CREATE = "create"
    UPDATE = "update"
    RESTORE = "restore"
    ADOPT = "adopt"
    # A metric made by hand in LaunchDarkly measures the event: a person chooses to
    # adopt it or to create ours alongside, so no twin is ever made without saying so.
    BY_HAND = "by hand"
    UNCHANGED = "unchanged"
    BLOCKED = "blocked"
    ORDER = (CREATE, UPDATE, RESTORE, ADOPT, BY_HAND, UNCHANGED, BLOCKED)
    SENT = (CREATE, UPDATE, RESTORE, ADOPT)


# What a person chose for an event that a hand-made metric already measures.
ALONGSIDE = "alongside"
ADOPT_PREFIX = "adopt:"


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
    # What numeric metrics count a unit without events as: AUTO leaves such units out
    # for durations (a unit without a latency event did not take 0 ms), 0 otherwise.
    event_default: str = AUTO
    # (event id, "adopt:<metric key>" or "alongside"), chosen on the review page.
    by_hand: tuple[tuple[int, str], ...] = ()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Choices:
        def pairs(name: str) -> tuple[tuple[int, str], ...]:
            raw = data.get(name) or {}
            return tuple(sorted((int(event_id), value) for event_id, value in raw.items()))

        return cls(
            **{
                **data,
                "randomization_units": tuple(data.get("randomization_units") or ("user",)),
                "tags": tuple(data.get("tags") or ()),
                "success_by_event": pairs("success_by_event"),
                "by_hand": pairs("by_hand"),
            }
        )

    def to_json(self) -> dict[str, Any]:
        return {
            **{f.name: getattr(self, f.name) for f in fields(self)},
            "randomization_units": list(self.randomization_units),
            "tags": list(self.tags),
            # JSON object keys are strings: {"<event id>": "LowerThanBaseline"}.
            "success_by_event": {str(k): v for k, v in self.success_by_event},
            "by_hand": {str(k): v for k, v in self.by_hand},
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


@dataclass(frozen=True)
class HandMade:
    """A metric someone made in LaunchDarkly on the same event."""

    key: str
    name: str


@dataclass
class PlanRow:
    event: SourceEvent
    mapping: MetricMapping  # unsaved when new
    body: dict[str, Any]
    action: str
    reason: str = ""
    changes: dict[str, tuple] = field(default_factory=dict)
    # Experiments that use the metric this row changes (LaunchDarkly's experimentCount),
    # and whether any use is active: changing it needs the person's confirmation.
    in_use: int = 0
    hand_made: list[HandMade] = field(default_factory=list)
    by_hand_choice: str = ""


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
        return [row for row in self.rows if row.action in PlanAction.SENT]

    @property
    def in_use(self) -> list[PlanRow]:
        """Rows that change a metric experiments use: applying needs a confirmation."""
        return [row for row in self.actionable if row.in_use]


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
    # The workspace's named maintainer (a service token acts for nobody), else the
    # member whose token connects.
    maintainer = sync_settings().maintainer_id or (connection.member_id if connection else "")

    hand_made = _hand_made_by_event(project_key, [event.key for event, _ in wanted], keys)
    by_hand = dict(choices.by_hand)

    rows = []
    for event, kind in wanted:
        current = existing.get((event.pk, kind))
        key = keys[(event.pk, kind)]
        twins = hand_made.get(event.key, []) if current is None else []
        choice = by_hand.get(event.pk, "")
        if choice.startswith(ADOPT_PREFIX) and choice[len(ADOPT_PREFIX) :] in {
            twin.key for twin in twins
        }:
            key = choice[len(ADOPT_PREFIX) :]
        mapping = _desired_mapping(event, kind, key, choices, project_key)
        mapping.maintainer_id = maintainer
        body = metric_body(mapping, event_key=event.key)
        mapping.desired_hash = fingerprint(body)
        row = PlanRow(event=event, mapping=mapping, body=body, action=PlanAction.CREATE)
        known = remote.get(key)
        if known is None and key != keys[(event.pk, kind)]:  # a hand-made one, adopted
            known = _remote_one(project_key, key)
        if reason := _blocked_reason(event, mapping, choices):
            row.action, row.reason = PlanAction.BLOCKED, reason
        elif current is not None:
            # The metric as last stored, before the new choices are merged into it.
            previous = metric_body(current, event_key=event.key)
            row.mapping = _merged(current, mapping)
            if known is not None and known.archived:
                row.action = PlanAction.RESTORE
                row.reason = "Archived in LaunchDarkly: applying restores (un-archives) it."
                row.changes = differences(body, previous)
            elif current.applied_hash == mapping.desired_hash:
                row.action = PlanAction.UNCHANGED
            else:
                row.action = PlanAction.UPDATE
                row.changes = differences(body, previous)
        elif twins and not choice:
            row.action = PlanAction.BY_HAND
            row.hand_made = twins
            names = ", ".join(f"“{twin.name}” ({twin.key})" for twin in twins)
            row.reason = (
                f"A metric made by hand in LaunchDarkly already measures this event: {names}. "
                "Adopt it, or create ours alongside."
            )
        elif twins and choice == ALONGSIDE:
            row.by_hand_choice = choice
            row.reason = "Created alongside the metric made by hand, as chosen."
        elif known is not None:
            row.action = PlanAction.RESTORE if known.archived else PlanAction.ADOPT
            row.by_hand_choice = choice
            adopted = (
                "Adopts the metric made by hand, as chosen"
                if choice
                else ("A metric with this key exists in LaunchDarkly")
            )
            row.reason = adopted + (
                "."
                if known.fingerprint == mapping.desired_hash
                else "; its fields will be updated to these."
            )
            if known.archived:
                row.reason += " It is archived: applying restores it."
        if row.action in PlanAction.SENT and known is not None and row.action != PlanAction.CREATE:
            row.in_use = max(known.experiment_count or 0, known.active_use)
        rows.append(row)

    problem = ""
    if connection is None or not connection.is_usable:
        problem = "Connect LaunchDarkly first: metrics are created through that connection."
    elif not project_key:
        problem = "Choose the LaunchDarkly project for metrics first."
    return Plan(rows=rows, project_key=project_key, problem=problem)


def _hand_made_by_event(
    project_key: str, event_keys: list[str], our_keys: dict[Any, str]
) -> dict[str, list[HandMade]]:
    """Metrics in LaunchDarkly on these events that the connector neither made nor
    manages (per the snapshot: the review refreshes it for the plan's events first)."""
    ours = set(our_keys.values()) | set(
        MetricMapping.objects.filter(project_key=project_key).values_list("metric_key", flat=True)
    )
    found: dict[str, list[HandMade]] = {}
    for remote in RemoteMetric.objects.filter(
        project_key=project_key, event_key__in=set(event_keys), managed_tag=False, archived=False
    ).order_by("key"):
        if remote.key not in ours:
            found.setdefault(remote.event_key, []).append(HandMade(remote.key, remote.name))
    return found


def _remote_one(project_key: str, key: str) -> RemoteMetric | None:
    """The snapshot of a key chosen for adoption (not among the plan's own keys)."""
    return RemoteMetric.objects.filter(project_key=project_key, key=key).first()


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
        event_default=default_event_default(kind, event.unit)
        if choices.event_default == AUTO
        else choices.event_default,
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
    "event_default",
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
    PlanAction.RESTORE: Action.RESTORE,
    PlanAction.ADOPT: Action.ADOPT,
}


@transaction.atomic
def plan_apply(*, plan: MetricPlan, actor: User, confirm_in_use: bool = False) -> SyncRun | None:
    """Store the plan's desired metrics and start a sync run for what must change.
    Recomputed here, so it applies the catalog as it is now, not as it was shown.
    Changing metrics that experiments use needs `confirm_in_use`."""
    # Claim the plan first: a second apply (a double click, two tabs) finds it taken,
    # even when both run at once, and the whole apply rolls back with any error below.
    now = timezone.now()
    if not MetricPlan.objects.filter(pk=plan.pk, applied_at__isnull=True).update(applied_at=now):
        raise PlanAlreadyApplied("This plan was applied already; nothing new was started.")
    computed = plan_compute(plan=plan)
    if computed.problem:
        raise PlanNotApplicable(computed.problem)
    if computed.in_use and not confirm_in_use:
        count = len(computed.in_use)
        raise PlanNeedsConfirmation(
            f"{count} metric{'s' if count != 1 else ''} of this plan "
            f"{'are' if count != 1 else 'is'} used by experiments: confirm that you want "
            "to change them, since results of running experiments may shift."
        )
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


class PlanNeedsConfirmation(PlanNotApplicable):
    """The plan changes metrics experiments use, and the person has not confirmed it."""


def plan_choose_by_hand(*, plan: MetricPlan, decisions: dict[int, str]) -> MetricPlan:
    """Record, per event, whether to adopt a hand-made metric (`adopt:<key>`) or to
    create ours alongside it (`alongside`); "" forgets a decision."""
    choices = Choices.from_json(plan.choices)
    chosen = dict(choices.by_hand)
    for event_id, decision in decisions.items():
        if decision:
            chosen[event_id] = decision
        else:
            chosen.pop(event_id, None)
    plan.choices = {**plan.choices, "by_hand": {str(k): v for k, v in sorted(chosen.items())}}
    plan.save(update_fields=["choices"])
    return plan


def plan_create(*, actor: User, selection: dict[str, Any], choices: Choices) -> MetricPlan:
    """Save a selection and its choices for review. Nothing is sent or stored beyond it."""
    return MetricPlan.objects.create(
        created_by=actor, selection=selection, choices=choices.to_json()
    )
