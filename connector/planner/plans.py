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
from connector.metrics.filters import describe, filter_digest, parse_conditions
from connector.metrics.keys import metric_key_for
from connector.metrics.models import (
    Aggregation,
    Analysis,
    MappingStatus,
    MetricConventions,
    MetricGroup,
    MetricKind,
    MetricMapping,
    MetricPlan,
    SuccessCriteria,
)
from connector.metrics.selectors import events_of_selection, metric_conventions
from connector.metrics.services import groups_store, mappings_store
from connector.planner.actions import PlanAction
from connector.planner.group_plans import GROUP_CHOSEN_FIELDS, GroupRow, group_rows
from connector.planner.specs import FilterRefused, MetricSpec, base_specs, spec_label
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
    # A metric set per event instead of one metric: conversion events get a binary
    # (conversion rate) and a count metric, numeric events a mean and a p90 metric.
    metric_set: bool = False
    # (event key, conditions as text): one more metric of the event per entry, counting
    # only the occurrences that pass ("plan = pro and amount > 100").
    filtered: tuple[tuple[str, str], ...] = ()
    # Metrics as code: event key -> the exact metrics the file asks for (MetricSpec's
    # JSON). An event named here gets these instead of what the other choices make.
    explicit: tuple[tuple[str, tuple[dict[str, Any], ...]], ...] = ()
    # Metric groups to make or keep (GroupSpec's JSON), in the order given.
    groups: tuple[dict[str, Any], ...] = ()
    # Metrics as code: the file is the whole truth, so managed metrics and groups it no
    # longer names are archived (metrics) or deleted (groups).
    prune: bool = False

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
                "filtered": tuple(
                    (str(key), str(text)) for key, text in data.get("filtered") or ()
                ),
                "explicit": tuple(
                    (str(key), tuple(specs)) for key, specs in (data.get("explicit") or {}).items()
                ),
                "groups": tuple(data.get("groups") or ()),
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
            "filtered": [list(pair) for pair in self.filtered],
            "explicit": {key: list(specs) for key, specs in self.explicit},
            "groups": list(self.groups),
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

    @property
    def filter_text(self) -> str:
        return describe(self.mapping.filters) if self.mapping.filters else ""


@dataclass
class Plan:
    rows: list[PlanRow]
    project_key: str
    problem: str = ""  # a reason that blocks the whole plan
    groups: list[GroupRow] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        counted = Counter(row.action for row in self.rows)
        return {action: counted.get(action, 0) for action in PlanAction.ORDER}

    @property
    def group_counts(self) -> dict[str, int]:
        counted = Counter(row.action for row in self.groups)
        return {action: counted.get(action, 0) for action in PlanAction.GROUP_ORDER}

    @property
    def actionable(self) -> list[PlanRow]:
        return [row for row in self.rows if row.action in PlanAction.SENT]

    @property
    def actionable_groups(self) -> list[GroupRow]:
        return [row for row in self.groups if row.action in PlanAction.GROUP_SENT]

    @property
    def in_use(self) -> list[PlanRow]:
        """Rows that change a metric experiments use: applying needs a confirmation."""
        return [row for row in self.actionable if row.in_use]


def _render(
    template: str, event: SourceEvent, kind: str, *, filter_text: str = "", variant: str = ""
) -> str:
    values = {
        "name": event.display_name,
        "event": event.key,
        "key": event.key,
        "description": event.description,
        "kind": MetricKind(kind).label,
        "filter": filter_text,
        "variant": variant,
    }
    try:
        return template.format_map(values).strip()
    except (KeyError, ValueError, IndexError):
        return template  # the picker validates templates; a bad one is shown as typed


def _name(template: str, event: SourceEvent, kind: str, spec: MetricSpec, filter_text: str) -> str:
    """The metric's name by the template; what tells a set's or a filter's metrics
    apart is added when the template does not place it itself."""
    name = _render(template, event, kind, filter_text=filter_text, variant=spec.set_part)
    if spec.in_set and "{kind}" not in template and "{variant}" not in template:
        name = f"{name} ({spec_label(spec, kind)})"
    if filter_text and "{filter}" not in template:
        name = f"{name} where {filter_text}"
    return name[:200] or event.key


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
    "properties",
    "removed_at",
)


def _blocked_reason(event: SourceEvent, mapping: MetricMapping) -> str:
    if event.is_removed:
        return "The event was removed at the source."
    if mapping.kind == MetricKind.NUMERIC:
        if not mapping.unit:
            return "A numeric metric needs a unit; this event has none."
        if not mapping.success_criteria:
            return "A numeric metric needs success criteria."
        if mapping.analysis == Analysis.PERCENTILE and not (
            mapping.percentile and 0 < mapping.percentile < 100
        ):
            return "Percentile analysis needs a percentile between 1 and 99."
    return ""


def plan_compute(*, plan: MetricPlan) -> Plan:
    """Every selected event with the metrics it will have, and the action. No writes."""
    return plan_for(events=selected_events(plan.selection), choices=Choices.from_json(plan.choices))


@dataclass
class _Wanted:
    """One metric the plan wants, before its key is settled."""

    event: SourceEvent
    spec: MetricSpec
    kind: str
    variant: str
    conditions: list[dict[str, Any]]
    refusal: str = ""


def _wanted(events: list[SourceEvent], choices: Choices) -> list[_Wanted]:
    explicit = dict(choices.explicit)
    filtered: dict[str, list[str]] = {}
    for event_key, text in choices.filtered:
        filtered.setdefault(event_key, []).append(text)
    wanted = []
    for event in events:
        if event.key in explicit:
            specs = [MetricSpec.from_json(data) for data in explicit[event.key]]
        else:
            kind = choices.kind_for(event)
            specs = base_specs(event, kind=kind, metric_set=choices.metric_set)
            for text in filtered.get(event.key, []):
                specs += base_specs(
                    event, kind=kind, metric_set=choices.metric_set, filter_text=text
                )
        for spec in specs:
            try:
                conditions = spec.checked_conditions(event)
                refusal = ""
            except FilterRefused as refused:
                conditions, refusal = [], f"Filter refused: {refused}"
            variant = spec.variant_for(conditions)
            if refusal and not spec.variant:
                # Never stored: a name of its own so it does not collide with the plain one.
                variant = "-".join(p for p in (spec.set_part, "f-refused") if p)
            wanted.append(
                _Wanted(event, spec, spec.kind, variant, [c.to_json() for c in conditions], refusal)
            )
    return wanted


def plan_for(*, events: list[SourceEvent], choices: Choices) -> Plan:
    """The plan for these events and choices; events of a metrics-as-code file that
    the catalog does not hold yet are unsaved (their metrics can only be new)."""
    connection = connection_of_workspace()
    project_key = connection.project_key if connection else ""
    conventions = metric_conventions()
    saved_ids = [event.pk for event in events if event.pk]

    existing: dict[tuple[int | str | None, str, str], MetricMapping] = {
        (m.source_event_id, m.kind, m.variant): m
        for m in MetricMapping.objects.filter(source_event_id__in=saved_ids)
    }
    wanted = _wanted(events, choices)

    def identity(w: _Wanted) -> tuple[int | str | None, str, str]:
        # An event of a file that the catalog lacks has no id yet: its key tells it apart.
        return (w.event.pk or w.event.key, w.kind, w.variant)

    keys = {
        identity(w): (
            existing[identity(w)].metric_key
            if identity(w) in existing
            else w.spec.key or metric_key_for(w.event.key, w.kind, variant=w.variant)
        )
        for w in wanted
    }
    # Clash rule: a new key already used by another event's metric, or by two metrics
    # of this plan, gets the longer digest form.
    taken = {
        m.metric_key: (m.source_event_id, m.kind, m.variant)
        for m in MetricMapping.objects.filter(
            project_key=project_key, metric_key__in=set(keys.values())
        )
    }
    seen: Counter[str] = Counter(keys.values())
    for w in wanted:
        ident = identity(w)
        key = keys[ident]
        if ident in existing or w.spec.key:
            continue
        if seen[key] > 1 or taken.get(key, ident) != ident:
            keys[ident] = metric_key_for(w.event.key, w.kind, variant=w.variant, digest_length=16)
    remote = {
        r.key: r
        for r in RemoteMetric.objects.filter(project_key=project_key, key__in=set(keys.values()))
    }
    # The workspace's named maintainer (a service token acts for nobody), else the
    # member whose token connects.
    maintainer = sync_settings().maintainer_id or (connection.member_id if connection else "")

    plain_keys = {ident: key for ident, key in keys.items() if not ident[2]}
    hand_made = _hand_made_by_event(project_key, [w.event.key for w in wanted], keys)
    by_hand = dict(choices.by_hand)

    rows = []
    for w in wanted:
        event, ident = w.event, identity(w)
        current = existing.get(ident)
        key = keys[ident]
        # A hand-made metric on the event stands in for the plain metric only.
        twins = hand_made.get(event.key, []) if current is None and ident in plain_keys else []
        choice = by_hand.get(event.pk, "") if event.pk else ""
        if choice.startswith(ADOPT_PREFIX) and choice[len(ADOPT_PREFIX) :] in {
            twin.key for twin in twins
        }:
            key = choice[len(ADOPT_PREFIX) :]
        mapping = _desired_mapping(w, key, choices, conventions, project_key)
        mapping.maintainer_id = maintainer
        body = metric_body(mapping, event_key=event.key)
        mapping.desired_hash = fingerprint(body)
        row = PlanRow(event=event, mapping=mapping, body=body, action=PlanAction.CREATE)
        known = remote.get(key)
        if known is None and key != keys[ident]:  # a hand-made one, adopted
            known = _remote_one(project_key, key)
        if reason := w.refusal or _blocked_reason(event, mapping):
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

    if choices.prune:
        rows += _archive_rows(project_key, {identity(w) for w in wanted}, remote)

    problem = ""
    if connection is None or not connection.is_usable:
        problem = "Connect LaunchDarkly first: metrics are created through that connection."
    elif not project_key:
        problem = "Choose the LaunchDarkly project for metrics first."
    groups = group_rows(
        specs=list(choices.groups),
        rows=rows,
        project_key=project_key,
        maintainer=maintainer,
        conventions_tags=list(conventions.tags),
        prune=choices.prune,
    )
    return Plan(rows=rows, project_key=project_key, problem=problem, groups=groups)


# Mappings that a file no longer names and that are still live in LaunchDarkly.
_LIVE = (MappingStatus.SYNCED, MappingStatus.DRIFTED, MappingStatus.PENDING, MappingStatus.FAILED)


def _archive_rows(
    project_key: str,
    wanted: set[tuple[int | str | None, str, str]],
    remote: dict[str, RemoteMetric],
) -> list[PlanRow]:
    """Metrics as code: the managed metrics the file no longer names are archived."""
    rows = []
    for mapping in (
        MetricMapping.objects.filter(project_key=project_key, managed=True, status__in=_LIVE)
        .select_related("source_event")
        .order_by("metric_key")
    ):
        if (mapping.source_event_id, mapping.kind, mapping.variant) in wanted:
            continue
        body = metric_body(mapping, event_key=mapping.source_event.key)
        row = PlanRow(
            event=mapping.source_event,
            mapping=mapping,
            body=body,
            action=PlanAction.ARCHIVE,
            reason="No longer in the file: archived in LaunchDarkly (its history stays).",
        )
        if known := remote.get(mapping.metric_key):
            row.in_use = max(known.experiment_count or 0, known.active_use)
        rows.append(row)
    return rows


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
    w: _Wanted,
    key: str,
    choices: Choices,
    conventions: MetricConventions,
    project_key: str,
) -> MetricMapping:
    event, kind, spec = w.event, w.kind, w.spec
    numeric = kind == MetricKind.NUMERIC
    analysis = (spec.analysis or choices.analysis) if numeric else Analysis.MEAN
    percentile = None
    if numeric and analysis == Analysis.PERCENTILE:
        percentile = spec.percentile if spec.analysis else choices.percentile
    filter_text = describe(w.conditions) if w.conditions else ""
    template = choices.name_template
    if template == "{name}" and conventions.name_template:
        template = conventions.name_template  # the picker's default yields to the workspace's
    mapping = MetricMapping(
        tenant_id=current_tenant().pk,
        source_event=event,
        kind=kind,
        variant=w.variant,
        filters=w.conditions,
        project_key=project_key,
        metric_key=key,
        name=_name(template, event, kind, spec, filter_text),
        description=_render(choices.description_template, event, kind, filter_text=filter_text),
        unit=event.unit if numeric else "",
        success_criteria=choices.success_for(event, kind),
        unit_aggregation=choices.aggregation
        if numeric
        else (Aggregation.SUM if kind == MetricKind.COUNT else Aggregation.AVERAGE),
        analysis=analysis,
        percentile=percentile,
        randomization_units=list(choices.randomization_units),
        tags=sorted({*choices.tags, *conventions.tags}),
        event_default=default_event_default(kind, event.unit)
        if choices.event_default == AUTO
        else choices.event_default,
    )
    for name, value in spec.overrides.items():
        if name in ("randomization_units", "tags"):
            value = sorted(set(value))
        setattr(mapping, name, value)
    return mapping


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
    "filters",
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
    PlanAction.ARCHIVE: Action.ARCHIVE,
    PlanAction.DELETE: Action.DELETE,
}


@transaction.atomic
def plan_apply(
    *, plan: MetricPlan, actor: User | None, confirm_in_use: bool = False
) -> SyncRun | None:
    """Store the plan's desired metrics and groups and start a sync run for what must
    change. Recomputed here, so it applies the catalog as it is now, not as it was
    shown. Changing metrics that experiments use needs `confirm_in_use`."""
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
    changed = [
        row.mapping
        for row in to_sync
        if row.mapping.pk is not None and row.action != PlanAction.ARCHIVE
    ]
    mappings_store(new=new, changed=changed, fields=_CHOSEN_FIELDS)
    groups = computed.actionable_groups
    groups_store(
        new=[row.group for row in groups if row.group.pk is None],
        changed=[
            row.group
            for row in groups
            if row.group.pk is not None and row.action != PlanAction.DELETE
        ],
        fields=GROUP_CHOSEN_FIELDS,
    )

    work: list[tuple[MetricMapping | MetricGroup, str]] = [
        (row.mapping, _SYNC_ACTION[row.action]) for row in to_sync
    ]
    # After the metrics: a group item waits until its metrics are in LaunchDarkly.
    work += [(row.group, _SYNC_ACTION[row.action]) for row in groups]
    run = sync_run_create(work=work, trigger=Trigger.PLAN, actor=actor)
    plan.applied_at = now
    plan.sync_run = run
    plan.save(update_fields=["applied_at", "sync_run"])
    audit_record(
        actor=actor,
        action=AuditAction.PLAN_APPLIED,
        target=f"plan {plan.pk}",
        details={
            **computed.counts,
            **{f"groups {action}": n for action, n in computed.group_counts.items() if n},
            "run": run.pk if run else None,
        },
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


def plan_create(*, actor: User | None, selection: dict[str, Any], choices: Choices) -> MetricPlan:
    """Save a selection and its choices for review. Nothing is sent or stored beyond it."""
    return MetricPlan.objects.create(
        created_by=actor, selection=selection, choices=choices.to_json()
    )


def plan_groups_set(*, plan: MetricPlan, groups: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Replace the plan's metric groups (GroupSpec's JSON, in order) before it is
    applied. A funnel step with a filter counts the filtered metric of its event, so
    that metric is added to the plan's filters when the plan does not make it yet;
    answers the (event key, filter) pairs added that way."""
    if plan.applied_at is not None:
        raise PlanAlreadyApplied("This plan was applied already; its groups can no longer change.")
    choices = Choices.from_json(plan.choices)
    steps = [
        (str(member["event"]), str(member["filter"]))
        for spec in groups
        for member in spec.get("metrics") or []
        if isinstance(member, dict) and member.get("event") and member.get("filter")
    ]
    properties = {
        event.key: event.properties or {}
        for event in SourceEvent.objects.filter(key__in={key for key, _ in steps}).only(
            "key", "properties"
        )
    }

    def digest(event_key: str, text: str) -> str | None:
        try:
            return filter_digest(parse_conditions(text, properties.get(event_key, {})))
        except FilterRefused:
            return None  # planned as written: its row says why it is refused

    planned = {(key, digest(key, text)) for key, text in choices.filtered}
    added = []
    for key, text in steps:
        if (key, digest(key, text)) not in planned:
            planned.add((key, digest(key, text)))
            added.append((key, text))
    plan.choices = {
        **plan.choices,
        "groups": list(groups),
        "filtered": [list(pair) for pair in (*choices.filtered, *added)],
    }
    plan.save(update_fields=["choices"])
    return added
