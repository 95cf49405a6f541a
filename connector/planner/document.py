"""Metrics as code: a workspace's metrics, sets and groups as a YAML file.

A file (version 1, docs/metrics-as-code.md) names every metric and metric group the
workspace should have. It is read strictly (`document_parse`: every problem with its
place, unknown keys refused, nothing written), turned into the picker's `Choices`
(`document_choices`: each metric exactly as written, and `prune`: what the file no
longer names is archived or deleted), and planned and applied by the same engine as
the picker (`plan_for`, `plan_create`, `plan_apply`), so the plan of a file is the
plan the review page shows for the same change. `document_export` writes the
workspace's metrics back as such a file, byte for byte the same for the same state.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml
from django.db import transaction

from connector.connections.selectors import connection_of_workspace
from connector.metrics.filters import (
    OPERATORS,
    FilterRefused,
    describe,
    normalised,
    parse_conditions,
)
from connector.metrics.keys import MAX_KEY_LENGTH, group_key_for
from connector.metrics.models import (
    Aggregation,
    Analysis,
    EventDefault,
    MappingStatus,
    MetricGroup,
    MetricKind,
    MetricMapping,
    MetricPlan,
    SuccessCriteria,
)
from connector.metrics.selectors import metric_conventions
from connector.planner.actions import PlanAction
from connector.planner.plans import Choices, Plan, plan_apply, plan_create, plan_for
from connector.sources.models import Origin, SourceEvent, ValueKind
from connector.sources.services import MAX_BATCH, ItemStatus, event_of_definition, events_upsert
from connector.sources.validation import validate_definition
from connector.sync.models import SyncRun
from connector.sync.remote import remote_refresh_for_events
from tenants.models import User
from tenants.scope import current_tenant

log = logging.getLogger(__name__)

VERSION = 1
# A workspace of 10,000 metrics exports to about 3 MB; past this a file is refused
# unread, so a stray upload cannot hold a worker for long.
MAX_DOCUMENT_BYTES = 4 * 1024 * 1024
MAX_METRICS = 10_000
MAX_EVENTS = 10_000
MAX_GROUPS = 1_000
# Past this many problems the rest are counted, not listed: the first ones say enough.
MAX_ERRORS = 100
# LaunchDarkly's keys: letters, digits, '.', '_' and '-', starting with a letter or digit.
KEY_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
VARIANT_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
VARIANT_MAX_LENGTH = 40
NAME_MAX_LENGTH = 200
DESCRIPTION_MAX_LENGTH = 5000
TAG_MAX_LENGTH = 64
PROPERTY_TYPES = ("string", "number", "boolean")

TOP_FIELDS = ("version", "workspace", "project", "conventions", "events", "metrics", "groups")
CONVENTION_FIELDS = ("name_template", "tags")
EVENT_FIELDS = ("key", "name", "kind", "unit", "description", "value_property", "properties")
METRIC_FIELDS = (
    "event",
    "kind",
    "key",
    "variant",
    "analysis",
    "percentile",
    "filter",
    "filters",
    "name",
    "description",
    "success_criteria",
    "unit_aggregation",
    "randomization_units",
    "tags",
    "event_default",
)
CONDITION_FIELDS = ("property", "op", "values")
GROUP_FIELDS = ("key", "name", "kind", "description", "tags", "tag", "metrics")
MEMBER_FIELDS = ("key", "event", "kind", "filter", "variant", "name")
GROUP_KINDS = ("funnel", "standard")

# The aggregation a conversion metric's kind implies (desired.metric_body sends it).
IMPLIED_AGGREGATION: dict[str, str] = {
    MetricKind.BINARY: Aggregation.AVERAGE,
    MetricKind.COUNT: Aggregation.SUM,
}


@dataclass(frozen=True)
class DocumentError:
    """One problem of a file: where (`metrics[3].kind`) and why."""

    place: str
    reason: str

    def __str__(self) -> str:
        return f"{self.place}: {self.reason}" if self.place else self.reason

    def as_dict(self) -> dict[str, str]:
        return {"field": self.place or "document", "reason": self.reason}


class DocumentInvalid(Exception):
    """The file cannot be planned; `errors` say each problem and its place."""

    def __init__(self, errors: list[DocumentError]) -> None:
        self.errors = errors
        super().__init__("; ".join(str(error) for error in errors[:5]))


class DocumentTooLarge(DocumentInvalid):
    """The file is over MAX_DOCUMENT_BYTES: refused unread."""


@dataclass(frozen=True)
class Document:
    """A checked file. `events` are definitions as `events_upsert` takes them;
    `metrics` are `{"event": key, **MetricSpec JSON}`; `groups` are GroupSpec JSON."""

    version: int = VERSION
    workspace: str = ""
    project: str = ""
    conventions: dict[str, Any] = field(default_factory=dict)
    events: tuple[dict[str, Any], ...] = ()
    metrics: tuple[dict[str, Any], ...] = ()
    groups: tuple[dict[str, Any], ...] = ()

    @property
    def event_keys(self) -> list[str]:
        """The events the file's metrics measure, each once, in the file's order."""
        return list(dict.fromkeys(metric["event"] for metric in self.metrics))


# --- reading a file ----------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """`yaml.safe_load`, refusing aliases: `*name` repeats a node without repeating
    its text, so a small file could stand for an enormous one."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, _NO_ALIASES, event.start_mark)
        return super().compose_node(parent, index)


def _load(text: str | bytes) -> Any:
    size = len(text.encode() if isinstance(text, str) else text)
    if size > MAX_DOCUMENT_BYTES:
        raise DocumentTooLarge(
            [DocumentError("", f"the file is {size} bytes; at most {MAX_DOCUMENT_BYTES}")]
        )
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DocumentInvalid(
                [DocumentError("", f"the file is not UTF-8 text (byte {exc.start})")]
            ) from None
    if "\x00" in text:
        raise DocumentInvalid([DocumentError("", "the file holds a NUL character")])
    try:
        return _safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        return _raise_yaml(where, str(exc.problem or exc.context or "not valid YAML"))
    except (yaml.YAMLError, RecursionError):
        return _raise_yaml("", "not valid YAML")


def _safe_load(text: str) -> Any:
    """`yaml.safe_load` without aliases; with libyaml (three times faster on a file of
    10,000 metrics) a first pass over its events finds them."""
    if not getattr(yaml, "__with_libyaml__", False):
        return yaml.load(text, Loader=_Loader)  # noqa: S506  # a SafeLoader
    for event in yaml.parse(text, Loader=yaml.CSafeLoader):
        if isinstance(event, yaml.AliasEvent):
            mark = event.start_mark
            where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            _raise_yaml(where, _NO_ALIASES)
    return yaml.load(text, Loader=yaml.CSafeLoader)


_NO_ALIASES = "aliases (*name) are not allowed in a metrics file"


def _raise_yaml(where: str, problem: str) -> Any:
    raise DocumentInvalid([DocumentError(where, f"not valid YAML: {problem}")])


class _Checker:
    """Collects problems with their places while reading a file's values."""

    def __init__(self) -> None:
        self.errors: list[DocumentError] = []

    def error(self, place: str, reason: str) -> None:
        self.errors.append(DocumentError(place, reason))

    def mapping(self, place: str, value: Any, known: tuple[str, ...]) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.error(place, "must be a mapping of keys and values")
            return None
        for name in value:
            if name not in known:
                shown = name if isinstance(name, str) else repr(name)
                self.error(_at(place, shown), f"unknown key; expected one of: {', '.join(known)}")
        return {name: item for name, item in value.items() if name in known}

    def items(self, place: str, value: Any, maximum: int) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.error(place, "must be a list")
            return []
        if len(value) > maximum:
            self.error(place, f"holds {len(value)} items; at most {maximum}")
            return []
        return value

    def text(self, place: str, value: Any, *, maximum: int, required: bool = False) -> str | None:
        if value is None:
            if required:
                self.error(place, "is required")
            return None
        if not isinstance(value, str):
            self.error(place, "must be text")
            return None
        if required and not value.strip():
            self.error(place, "must not be empty")
            return None
        if len(value) > maximum:
            self.error(place, f"is {len(value)} characters; at most {maximum}")
            return None
        return value

    def key(self, place: str, value: Any, *, maximum: int = MAX_KEY_LENGTH) -> str | None:
        text = self.text(place, value, maximum=maximum)
        if text is not None and not KEY_PATTERN.fullmatch(text):
            self.error(
                place,
                "must be letters, digits, “.”, “_” and “-”, starting with a letter or digit",
            )
            return None
        return text

    def choice(
        self, place: str, value: Any, allowed: Iterable[str], *, required: bool = False
    ) -> str | None:
        allowed = tuple(allowed)
        if value is None:
            if required:
                self.error(place, f"is required: {_either(allowed)}")
            return None
        if value not in allowed:
            self.error(place, f"must be {_either(allowed)}")
            return None
        return str(value)

    def words(self, place: str, value: Any, *, minimum: int = 0) -> list[str] | None:
        """A list of short, non-empty texts (tags, randomization units)."""
        if value is None:
            return None
        if not isinstance(value, list):
            self.error(place, "must be a list of texts")
            return None
        if len(value) < minimum:
            self.error(place, f"needs at least {minimum}")
            return None
        words = []
        for index, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                self.error(f"{place}[{index}]", "must be a non-empty text")
            elif len(item) > TAG_MAX_LENGTH:
                self.error(
                    f"{place}[{index}]", f"is {len(item)} characters; at most {TAG_MAX_LENGTH}"
                )
            else:
                words.append(item)
        return words if len(words) == len(value) else None


def _at(place: str, name: str) -> str:
    return f"{place}.{name}" if place else name


def _either(allowed: tuple[str, ...]) -> str:
    if len(allowed) == 1:
        return allowed[0]
    return ", ".join(allowed[:-1]) + " or " + allowed[-1]


def document_parse(text: str | bytes) -> Document:
    """The file, checked: DocumentInvalid lists every problem with its place. Reads
    nothing of the workspace and writes nothing."""
    raw = _load(text)
    check = _Checker()
    if not isinstance(raw, dict):
        shown = "empty" if raw is None else f"a {type(raw).__name__}, not a mapping"
        raise DocumentInvalid(
            [DocumentError("", f"the file is {shown}; it starts with `version: 1`")]
        )
    top = check.mapping("", raw, TOP_FIELDS) or {}
    version = top.get("version")
    if version is None:
        check.error("version", f"is required: {VERSION}")
    elif not _whole(version, VERSION, VERSION):
        check.error("version", f"must be {VERSION} (the only version there is)")
    workspace = check.text("workspace", top.get("workspace"), maximum=100) or ""
    project = check.text("project", top.get("project"), maximum=140) or ""
    conventions = _conventions(check, top.get("conventions"))
    events = [
        definition
        for index, item in enumerate(check.items("events", top.get("events"), MAX_EVENTS))
        if (definition := _event(check, f"events[{index}]", item)) is not None
    ]
    metrics = [
        metric
        for index, item in enumerate(check.items("metrics", top.get("metrics"), MAX_METRICS))
        if (metric := _metric(check, f"metrics[{index}]", item)) is not None
    ]
    groups = [
        group
        for index, item in enumerate(check.items("groups", top.get("groups"), MAX_GROUPS))
        if (group := _group(check, f"groups[{index}]", item)) is not None
    ]
    _twice(check, "events", [definition["key"] for definition in events], "an event")
    _twice(check, "metrics", [m.get("key") for m in metrics], "a metric key")
    _twice(check, "groups", [g.get("key") or group_key_for(g["name"]) for g in groups], "a group")
    if check.errors:
        errors = check.errors
        if len(errors) > MAX_ERRORS:
            errors = [
                *errors[:MAX_ERRORS],
                DocumentError("", f"… and {len(errors) - MAX_ERRORS} more problems"),
            ]
        raise DocumentInvalid(errors)
    return Document(
        version=VERSION,
        workspace=workspace,
        project=project,
        conventions=conventions,
        events=tuple(events),
        metrics=tuple(metrics),
        groups=tuple(groups),
    )


def _twice(check: _Checker, place: str, keys: list[str | None], what: str) -> None:
    positions: dict[str, list[int]] = {}
    for index, key in enumerate(keys):
        if key:
            positions.setdefault(key, []).append(index)
    for key, where in positions.items():
        if len(where) > 1:
            for index in where[1:]:
                check.error(
                    f"{place}[{index}]",
                    f"{what} “{key}” is named twice (also {place}[{where[0]}])",
                )


def _conventions(check: _Checker, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    conventions = check.mapping("conventions", value, CONVENTION_FIELDS)
    if conventions is None:
        return {}
    template = check.text(
        "conventions.name_template", conventions.get("name_template"), maximum=200
    )
    tags = check.words("conventions.tags", conventions.get("tags"))
    return {
        name: item
        for name, item in (("name_template", template), ("tags", tags))
        if item is not None
    }


def _event(check: _Checker, place: str, value: Any) -> dict[str, Any] | None:
    event = check.mapping(place, value, EVENT_FIELDS)
    if event is None:
        return None
    # The catalog's own rules (connector.sources.validation), in the file's words.
    definition = {("value_kind" if name == "kind" else name): item for name, item in event.items()}
    clean, problems = validate_definition(definition)
    for problem in problems:
        name = "kind" if problem.field == "value_kind" else problem.field
        check.error(_at(place, name), problem.reason.replace("value_kind", "kind"))
    if clean is None:
        return None
    return {name: item for name, item in definition.items() if item is not None}


def _metric(check: _Checker, place: str, value: Any) -> dict[str, Any] | None:
    metric = check.mapping(place, value, METRIC_FIELDS)
    if metric is None:
        return None
    before = len(check.errors)
    event = check.text(_at(place, "event"), metric.get("event"), maximum=200, required=True)
    kind = check.choice(_at(place, "kind"), metric.get("kind"), MetricKind.values, required=True)
    spec: dict[str, Any] = {"event": event, "kind": kind}
    if (key := check.key(_at(place, "key"), metric.get("key"))) is not None:
        spec["key"] = key
    if "variant" in metric:
        variant = check.text(_at(place, "variant"), metric["variant"], maximum=VARIANT_MAX_LENGTH)
        if variant and not VARIANT_PATTERN.fullmatch(variant):
            check.error(_at(place, "variant"), "must be letters, digits, “.”, “_” and “-”")
        elif variant is not None:
            spec["variant"] = variant
    numeric = kind == MetricKind.NUMERIC
    _analysis(check, place, metric, spec, numeric=numeric)
    _filter(check, place, metric, spec)
    for name, maximum in (("name", NAME_MAX_LENGTH), ("description", DESCRIPTION_MAX_LENGTH)):
        if name in metric:
            text = check.text(_at(place, name), metric[name], maximum=maximum)
            if name == "name" and text is not None and not text.strip():
                check.error(_at(place, name), "must not be empty")
            elif text is not None:
                spec[name] = text
    if "success_criteria" in metric:
        # "" leaves it out, as LaunchDarkly allows for conversion metrics.
        criterion = check.choice(
            _at(place, "success_criteria"),
            metric["success_criteria"],
            (*SuccessCriteria.values, ""),
        )
        if criterion is not None:
            spec["success_criteria"] = criterion
    _aggregation(check, place, metric, spec, kind)
    if "event_default" in metric:
        if not numeric:
            check.error(
                _at(place, "event_default"),
                "only numeric metrics have it: a conversion already counts a unit without "
                "events as not converted",
            )
        elif (
            default := check.choice(
                _at(place, "event_default"), metric["event_default"], EventDefault.values
            )
        ) is not None:
            spec["event_default"] = default
    for name, minimum in (("randomization_units", 1), ("tags", 0)):
        if name in metric:
            words = check.words(_at(place, name), metric[name], minimum=minimum)
            if words is not None:
                spec[name] = sorted(set(words))
    return spec if len(check.errors) == before else None


def _analysis(
    check: _Checker, place: str, metric: dict[str, Any], spec: dict[str, Any], *, numeric: bool
) -> None:
    analysis, percentile = metric.get("analysis"), metric.get("percentile")
    if not numeric:
        for name in ("analysis", "percentile"):
            if name in metric:
                check.error(_at(place, name), "only numeric metrics have an analysis")
        return
    chosen = check.choice(_at(place, "analysis"), analysis, Analysis.values)
    if chosen is not None:
        spec["analysis"] = chosen
    if chosen == Analysis.PERCENTILE:
        if percentile is None:
            check.error(_at(place, "percentile"), "is required for percentile analysis: 1 to 99")
        elif not _whole(percentile, 1, 99):
            check.error(_at(place, "percentile"), "must be a whole number from 1 to 99")
        else:
            spec["percentile"] = percentile
    elif percentile is not None:
        check.error(_at(place, "percentile"), "only with `analysis: percentile`")


def _whole(value: Any, minimum: int, maximum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and minimum <= value <= maximum


def _aggregation(
    check: _Checker, place: str, metric: dict[str, Any], spec: dict[str, Any], kind: str | None
) -> None:
    if "unit_aggregation" not in metric:
        return
    chosen = check.choice(
        _at(place, "unit_aggregation"), metric["unit_aggregation"], Aggregation.values
    )
    implied = IMPLIED_AGGREGATION.get(kind) if kind else None
    if chosen is None:
        return
    if implied is not None and chosen != implied:
        check.error(
            _at(place, "unit_aggregation"),
            f"a {kind} metric's aggregation is {implied}, by its kind; for a sum of "
            "occurrences use kind: count",
        )
    elif implied is None:
        spec["unit_aggregation"] = chosen


def _filter(check: _Checker, place: str, metric: dict[str, Any], spec: dict[str, Any]) -> None:
    if "filter" in metric and "filters" in metric:
        check.error(_at(place, "filters"), "write the conditions once: `filter` or `filters`")
        return
    if "filter" in metric:
        text = check.text(_at(place, "filter"), metric["filter"], maximum=20_000)
        if text and text.strip():
            spec["filter"] = text
        return
    conditions = check.items(_at(place, "filters"), metric.get("filters"), 10 * 10)
    found = []
    for index, item in enumerate(conditions):
        where = f"{_at(place, 'filters')}[{index}]"
        condition = check.mapping(where, item, CONDITION_FIELDS)
        if condition is None:
            continue
        name = check.text(
            _at(where, "property"), condition.get("property"), maximum=200, required=True
        )
        op = check.choice(_at(where, "op"), condition.get("op"), OPERATORS)
        if op is None and condition.get("op") is None:
            check.error(_at(where, "op"), "is required")
        values = condition.get("values")
        if not isinstance(values, list) or not values:
            check.error(_at(where, "values"), "must be a list of at least one value")
            continue
        if any(isinstance(v, dict | list) or v is None for v in values):
            check.error(_at(where, "values"), "each value is a text, a number, true or false")
            continue
        if name is not None and op is not None:
            found.append({"property": name, "op": op, "values": list(values)})
    if found and len(found) == len(conditions):
        spec["filters"] = found


def _group(check: _Checker, place: str, value: Any) -> dict[str, Any] | None:
    group = check.mapping(place, value, GROUP_FIELDS)
    if group is None:
        return None
    before = len(check.errors)
    name = check.text(_at(place, "name"), group.get("name"), maximum=NAME_MAX_LENGTH, required=True)
    kind = check.choice(_at(place, "kind"), group.get("kind"), GROUP_KINDS, required=True)
    spec: dict[str, Any] = {"name": name, "kind": kind}
    if (key := check.key(_at(place, "key"), group.get("key"))) is not None:
        spec["key"] = key
    if "description" in group:
        description = check.text(
            _at(place, "description"), group["description"], maximum=DESCRIPTION_MAX_LENGTH
        )
        if description is not None:
            spec["description"] = description
    if "tags" in group and (tags := check.words(_at(place, "tags"), group["tags"])) is not None:
        spec["tags"] = sorted(set(tags))
    tag = check.text(_at(place, "tag"), group.get("tag"), maximum=TAG_MAX_LENGTH)
    if tag is not None and not tag.strip():
        check.error(_at(place, "tag"), "must not be empty")
    elif tag is not None:
        if kind == "funnel":
            check.error(
                _at(place, "tag"),
                "a funnel's steps are ordered: list them under `metrics`; a tag makes a "
                "standard group only",
            )
        spec["tag"] = tag
    members = []
    for index, item in enumerate(check.items(_at(place, "metrics"), group.get("metrics"), 100)):
        member = _member(check, f"{_at(place, 'metrics')}[{index}]", item)
        if member is not None:
            members.append(member)
    if tag is None and "metrics" not in group:
        check.error(_at(place, "metrics"), "is required: the group's metrics (or `tag:`)")
    spec["metrics"] = members
    return spec if len(check.errors) == before else None


def _member(check: _Checker, place: str, value: Any) -> str | dict[str, Any] | None:
    if isinstance(value, str):
        return check.key(place, value)
    member = check.mapping(place, value, MEMBER_FIELDS)
    if member is None:
        return None
    found: dict[str, Any] = {}
    if "key" in member:
        if "event" in member:
            check.error(_at(place, "event"), "name a metric by its `key` or by its `event`")
        if (key := check.key(_at(place, "key"), member["key"])) is not None:
            found["key"] = key
        for name in ("kind", "filter", "variant"):
            if name in member:
                check.error(_at(place, name), "only with `event`: the key names the metric")
    elif "event" in member:
        found["event"] = check.text(_at(place, "event"), member["event"], maximum=200)
        if "kind" in member:
            found["kind"] = check.choice(_at(place, "kind"), member["kind"], MetricKind.values)
        for name in ("filter", "variant"):
            if name in member:
                found[name] = check.text(_at(place, name), member[name], maximum=20_000)
    else:
        check.error(place, "names a metric: `key: …`, or `event: …` (with `kind`, `filter`)")
    if "name" in member:
        found["name"] = check.text(_at(place, "name"), member["name"], maximum=NAME_MAX_LENGTH)
    return found


# --- planning and applying -----------------------------------------------------------------


def document_choices(document: Document) -> Choices:
    """The picker's choices that mean the file: each metric exactly as written, the
    file's groups, and `prune` (the file is the whole truth)."""
    explicit: dict[str, list[dict[str, Any]]] = {}
    for metric in document.metrics:
        spec = {name: value for name, value in metric.items() if name != "event"}
        explicit.setdefault(metric["event"], []).append(spec)
    return Choices(
        explicit=tuple((key, tuple(specs)) for key, specs in explicit.items()),
        groups=tuple(document.groups),
        prune=True,
    )


def _events_of(document: Document) -> tuple[list[SourceEvent], list[SourceEvent]]:
    """The events the file's metrics measure, by key (the order of a saved plan's
    selection), and those of the file's `events:` that the catalog lacks, unsaved.
    DocumentInvalid names each metric whose event is in neither."""
    listed = {definition["key"]: definition for definition in document.events}
    wanted = set(document.event_keys) | set(listed)
    catalog = {event.key: event for event in SourceEvent.objects.filter(key__in=wanted)}
    to_add = [_unsaved(listed[key]) for key in sorted(listed) if key not in catalog]
    known = {**{event.key: event for event in to_add}, **catalog}
    errors = [
        DocumentError(
            f"metrics[{index}].event",
            f"no event “{metric['event']}” in the workspace's catalog or in the file's "
            "`events:`; add its definition there",
        )
        for index, metric in enumerate(document.metrics)
        if metric["event"] not in known
    ]
    if errors:
        raise DocumentInvalid(errors)
    return [known[key] for key in sorted(document.event_keys)], to_add


def _unsaved(definition: dict[str, Any]) -> SourceEvent:
    clean, _ = validate_definition(definition)
    assert clean is not None  # checked by document_parse
    return event_of_definition(clean, tenant=current_tenant(), origin=Origin.API)


def document_refresh(document: Document) -> str:
    """Read LaunchDarkly's metrics on the file's events into the snapshot, as the review
    page does before it shows a plan, so the plan sees hand-made, archived and used
    metrics as they are now. Returns "" or a note saying it could not."""
    connection = connection_of_workspace()
    if connection is None or not connection.is_usable or not connection.project_key:
        return ""
    try:
        return remote_refresh_for_events(connection=connection, event_keys=document.event_keys)
    except Exception:  # the plan is still computed, from the last resync's snapshot
        log.exception("reading LaunchDarkly's metrics for a metrics file failed")
        return "LaunchDarkly could not be asked about these events just now."


def document_plan(document: Document) -> tuple[Plan, list[SourceEvent]]:
    """The plan of the file for the workspace in scope, and the events it would add
    to the catalog (unsaved). No writes."""
    events, to_add = _events_of(document)
    plan = plan_for(events=events, choices=document_choices(document))
    _check_keys(document, events, plan)
    return plan, to_add


def _file_places(document: Document, events: list[SourceEvent]) -> list[int]:
    """The index in the file's `metrics` of each of the plan's first rows: plan_for
    makes them per event (in `events`' order), each event's in the file's order."""
    by_event: dict[str, list[int]] = {}
    for index, metric in enumerate(document.metrics):
        by_event.setdefault(metric["event"], []).append(index)
    return [index for event in events for index in by_event[event.key]]


def _check_keys(document: Document, events: list[SourceEvent], plan: Plan) -> None:
    """What the engine would quietly settle otherwise: two entries meaning one metric,
    a key that another metric holds, a key that is not the metric's own."""
    places = _file_places(document, events)
    errors = []
    seen: dict[tuple[str, str, str], int] = {}
    key_owner: dict[str, int] = {}
    holders = {
        m.metric_key: m
        for m in MetricMapping.objects.filter(
            project_key=plan.project_key,
            metric_key__in=[m["key"] for m in document.metrics if m.get("key")],
        ).select_related("source_event")
    }
    for index, row in zip(places, plan.rows[: len(places)], strict=True):
        mapping, metric = row.mapping, document.metrics[index]
        place = f"metrics[{index}]"
        identity = (row.event.key, mapping.kind, mapping.variant)
        if identity in seen:
            errors.append(
                DocumentError(
                    place,
                    f"the same metric as metrics[{seen[identity]}] ({_identity_text(identity)}); "
                    "give one of them another `variant`",
                )
            )
            continue
        seen[identity] = index
        if (owner := key_owner.get(mapping.metric_key)) is not None:
            errors.append(
                DocumentError(
                    _at(place, "key"),
                    f"“{mapping.metric_key}” is the key of metrics[{owner}] too",
                )
            )
        key_owner.setdefault(mapping.metric_key, index)
        wanted_key = metric.get("key")
        if not wanted_key:
            continue
        if mapping.pk is not None and mapping.metric_key != wanted_key:
            errors.append(
                DocumentError(
                    _at(place, "key"),
                    f"this metric (event {row.event.key}, kind {mapping.kind}) has the key "
                    f"“{mapping.metric_key}”, and a metric's key never changes: write that "
                    "key, or leave `key` out",
                )
            )
        holder = holders.get(wanted_key)
        held = (holder.source_event.key, holder.kind, holder.variant) if holder else identity
        if held != identity:
            errors.append(
                DocumentError(
                    _at(place, "key"),
                    f"“{wanted_key}” is the key of another metric of the workspace "
                    f"({_identity_text(held)})",
                )
            )
    if errors:
        raise DocumentInvalid(errors)


def _identity_text(identity: tuple[str, str, str]) -> str:
    event, kind, variant = identity
    return f"event {event}, kind {kind}" + (f", variant {variant}" if variant else "")


def _events_add(
    events: list[SourceEvent], document: Document, *, actor: User | None, via: str
) -> None:
    """Add the file's definitions of events the catalog lacks, through the catalog's
    one way in; events it holds already are left as the source product keeps them."""
    listed = {definition["key"]: definition for definition in document.events}
    definitions = [listed[event.key] for event in events]
    for start in range(0, len(definitions), MAX_BATCH):
        results = events_upsert(
            definitions=definitions[start : start + MAX_BATCH],
            origin=Origin.UPLOAD,
            actor=actor,
            via=via,
        )
        refused = [r for r in results if r.status == ItemStatus.REJECTED]
        if refused:  # document_parse checked them with the same rules
            raise DocumentInvalid(
                [
                    DocumentError(f"events ({r.key})", "; ".join(e.reason for e in r.errors))
                    for r in refused
                ]
            )


@transaction.atomic
def document_plan_create(
    *, document: Document, actor: User | None, via: str = "metrics file"
) -> MetricPlan:
    """Add the events the file defines and the catalog lacks, and save the file's plan
    for review (the review page shows it like any picker plan). Nothing is sent."""
    _, to_add = document_plan(document)
    _events_add(to_add, document, actor=actor, via=via)
    ids = list(
        SourceEvent.objects.filter(key__in=document.event_keys)
        .order_by("key")
        .values_list("pk", flat=True)
    )
    return plan_create(
        actor=actor,  # None for an API key: the run and the audit record "no user"
        selection={"ids": ids},
        choices=document_choices(document),
    )


@transaction.atomic
def document_apply(
    *,
    document: Document,
    actor: User | None,
    confirm_in_use: bool = False,
    via: str = "metrics file",
) -> tuple[MetricPlan, SyncRun | None]:
    """Add the missing events, save the plan and apply it, all or nothing: a refusal
    (PlanNotApplicable, DocumentInvalid) leaves the workspace as it was."""
    plan = document_plan_create(document=document, actor=actor, via=via)
    run = plan_apply(
        plan=plan,
        actor=actor,
        confirm_in_use=confirm_in_use,
    )
    return plan, run


def plan_blocks(plan: Plan) -> list[str]:
    """Why the plan cannot do all the file asks: its problem, and each blocked row or
    metric left for a person to choose (by hand). Empty when everything can go."""
    reasons = [plan.problem] if plan.problem else []
    reasons += [
        f"{row.mapping.metric_key}: {row.reason}"
        for row in plan.rows
        if row.action in (PlanAction.BLOCKED, PlanAction.BY_HAND)
    ]
    reasons += [
        f"group {row.group.key}: {row.reason}"
        for row in plan.groups
        if row.action == PlanAction.BLOCKED
    ]
    return reasons


def plan_summary(plan: Plan, events_to_add: list[SourceEvent], *, note: str = "") -> dict[str, Any]:
    """The plan as plain data, row by row (the API's answer, the command's lines);
    `note` says when LaunchDarkly could not be read first (document_refresh)."""
    return {
        "project": plan.project_key,
        "problem": plan.problem,
        "note": note,
        "metrics": [
            {
                "action": row.action,
                "key": row.mapping.metric_key,
                "name": row.mapping.name,
                "kind": row.mapping.kind,
                "event": row.event.key,
                "filter": row.filter_text,
                "reason": row.reason,
                "changes": _changes(row.changes),
            }
            for row in plan.rows
        ],
        "groups": [
            {
                "action": row.action,
                "key": row.group.key,
                "name": row.group.name,
                "kind": row.group.kind,
                "reason": row.reason,
                "changes": _changes(row.changes),
            }
            for row in plan.groups
        ],
        "counts": {"metrics": plan.counts, "groups": plan.group_counts},
        "events_to_add": [event.key for event in events_to_add],
        "blocked": plan_blocks(plan),
    }


def _changes(changes: dict[str, tuple]) -> list[dict[str, Any]]:
    # differences() gives (desired, actual).
    return [
        {"field": name, "was": actual, "becomes": desired}
        for name, (desired, actual) in changes.items()
    ]


# --- writing a file ----------------------------------------------------------------------

# Metrics a file names: not those gone from LaunchDarkly (deleted, archived), nor those
# of events removed at the source (orphans, which the sync archives by its policy).
_EXPORTED_STATUSES = (
    MappingStatus.PENDING,
    MappingStatus.SYNCED,
    MappingStatus.FAILED,
    MappingStatus.CONFLICT,
    MappingStatus.DRIFTED,
)


def document_export() -> str:
    """The workspace's metrics, groups and the events they measure, as a metrics file.
    Sorted throughout, so the same workspace exports the same bytes."""
    mappings = list(
        MetricMapping.objects.filter(
            status__in=_EXPORTED_STATUSES, source_event__removed_at__isnull=True
        )
        .select_related("source_event")
        .order_by("source_event__key", "metric_key")
    )
    groups = MetricGroup.objects.exclude(status=MappingStatus.DELETED).order_by("key")
    conventions = metric_conventions()
    connection = connection_of_workspace()
    events = {mapping.source_event.key: mapping.source_event for mapping in mappings}
    document = {
        "version": VERSION,
        "workspace": current_tenant().slug,
        "project": connection.project_key if connection else "",
        "conventions": {
            "name_template": conventions.name_template,
            "tags": sorted(conventions.tags or []),
        },
        "events": [_exported_event(events[key]) for key in sorted(events)],
        "metrics": [_exported_metric(mapping) for mapping in mappings],
        "groups": [_exported_group(group, mappings) for group in groups],
    }
    header = (
        "# Metrics as code (docs/metrics-as-code.md): edit, then\n"
        "#   python manage.py metrics plan --workspace W --file F\n"
    )
    return header + yaml.safe_dump(
        document, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100
    )


def _exported_event(event: SourceEvent) -> dict[str, Any]:
    exported: dict[str, Any] = {"key": event.key, "name": event.name, "kind": event.value_kind}
    if event.value_kind == ValueKind.NUMERIC:
        exported["unit"] = event.unit
        if event.value_property:
            exported["value_property"] = event.value_property
    if event.description:
        exported["description"] = event.description
    if event.properties:
        exported["properties"] = {name: event.properties[name] for name in sorted(event.properties)}
    return exported


def _exported_metric(mapping: MetricMapping) -> dict[str, Any]:
    numeric = mapping.kind == MetricKind.NUMERIC
    exported: dict[str, Any] = {
        "event": mapping.source_event.key,
        "kind": mapping.kind,
        "key": mapping.metric_key,
        "variant": mapping.variant,
    }
    if numeric:
        exported["analysis"] = mapping.analysis
        if mapping.analysis == Analysis.PERCENTILE:
            exported["percentile"] = mapping.percentile
    if mapping.filters:
        exported.update(_exported_filter(mapping))
    exported["name"] = mapping.name
    exported["description"] = mapping.description
    exported["success_criteria"] = mapping.success_criteria
    if numeric:
        exported["unit_aggregation"] = mapping.unit_aggregation
        exported["event_default"] = mapping.event_default
    exported["randomization_units"] = sorted(mapping.randomization_units or ["user"])
    exported["tags"] = sorted(mapping.tags or [])
    return exported


def _exported_filter(mapping: MetricMapping) -> dict[str, Any]:
    """The conditions as text when the text reads back as exactly these conditions,
    else structured (a value holding " and " or quotes does not survive the text)."""
    properties = mapping.source_event.properties or {}
    text = describe(mapping.filters)
    try:
        exact = normalised(mapping.filters, properties) == parse_conditions(text, properties)
    except FilterRefused:
        exact = False
    if exact:
        return {"filter": text}
    # In our order: PostgreSQL's jsonb keeps its own, and the export must not follow it.
    return {
        "filters": [
            {name: condition[name] for name in CONDITION_FIELDS} for condition in mapping.filters
        ]
    }


def _exported_group(group: MetricGroup, mappings: list[MetricMapping]) -> dict[str, Any]:
    names = {mapping.metric_key: mapping.name for mapping in mappings}
    exported: dict[str, Any] = {
        "key": group.key,
        "name": group.name,
        "kind": group.kind,
        "description": group.description,
        "tags": sorted(group.tags or []),
    }
    if group.from_tag:
        exported["tag"] = group.from_tag
        return exported
    # A member whose name in the group is the metric's own is written as its key alone.
    exported["metrics"] = [
        member["key"]
        if names.get(member["key"]) == member["nameInGroup"]
        else {"key": member["key"], "name": member["nameInGroup"]}
        for member in group.metrics
    ]
    return exported


__all__ = [
    "MAX_DOCUMENT_BYTES",
    "Document",
    "DocumentError",
    "DocumentInvalid",
    "DocumentTooLarge",
    "document_apply",
    "document_choices",
    "document_export",
    "document_parse",
    "document_plan",
    "document_plan_create",
    "document_refresh",
    "plan_blocks",
    "plan_summary",
]
