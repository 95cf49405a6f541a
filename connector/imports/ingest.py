"""Ingest: a batch of occurrences checked item by item, the good ones stored durably
before the answer, and every one counted.

The checks are ours because LaunchDarkly's import has none worth the name: it answers
202 and silently drops what it cannot use. So every reason LaunchDarkly would drop an
occurrence (an unknown event, a context kind the project lacks, a missing key, a value
that is not a number for a numeric metric, a timestamp in the future, one too old to
count) is refused here, per item, with the field and the reason.

Occurrences also teach the catalog its events' flat properties (`SourceEvent.properties`,
what metric filters may test): the names a request brings that the catalog does not
know are added with the JSON type of their first value. And an accepted occurrence of
an event whose metrics filter on properties carries those properties, and only those,
in its LaunchDarkly body's `data`, where LaunchDarkly's filters read them.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.cache import cache
from django.db import connection as db
from django.db import transaction
from django.db.models import F, Func, JSONField, Q, Sum, Value
from django.utils import timezone

from connector.connections.models import LaunchDarklyConnection
from connector.connections.selectors import connection_of_workspace
from connector.connections.services import client_for
from connector.imports.models import ImportCount, ImportSettings, Occurrence, UnknownEvents
from connector.metrics.filters import properties_needed
from connector.metrics.models import MappingStatus, MetricMapping
from connector.sources.models import PropertyType, SourceEvent, ValueKind
from connector.sources.validation import MAX_PROPERTIES, is_storable, property_name_problem
from tenants.scope import current_tenant

MAX_BATCH = 1000
# Clocks disagree a little; more than this in the future is a wrong timestamp.
FUTURE_SKEW_MS = 5 * 60 * 1000
KEY_MAX_LENGTH = 200
CONTEXT_KEY_MAX_LENGTH = 1024
CONTEXT_KINDS_TTL_S = 10 * 60
# The source product sends a catalog key; "last seen" is kept to the minute.
LAST_SEEN_PRECISION_S = 60

ACCEPTED, REFUSED, NOT_MAPPED, COUNTED = "accepted", "refused", "not_mapped", "counted"


@dataclass
class ItemResult:
    index: int
    status: str
    errors: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "status": self.status, "errors": self.errors}


@dataclass
class IngestReport:
    results: list[ItemResult]

    @property
    def counts(self) -> dict[str, int]:
        counted = Counter(r.status for r in self.results)
        return {status: counted.get(status, 0) for status in (ACCEPTED, REFUSED, NOT_MAPPED)} | (
            {COUNTED: counted[COUNTED]} if counted.get(COUNTED) else {}
        )


class Refused(Exception):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field, self.reason = field, reason


@dataclass(frozen=True)
class Catalogued:
    key: str
    numeric: bool
    value_property: str
    removed: bool
    # The property names the catalog knows, and then those this request has looked
    # at (learned, or never to be learned): an occurrence whose names are all in it
    # costs one subset test.
    seen: set[str] = field(default_factory=set)
    known_count: int = 0  # of names in the catalog, for MAX_PROPERTIES
    # The properties its metrics' filters read: forwarded in the body's `data`.
    forwarded: tuple[str, ...] = ()


@dataclass
class Context:
    """What checking one batch needs, read once per batch."""

    settings: ImportSettings
    now_ms: int
    kinds: frozenset[str] | None  # None: LaunchDarkly could not be asked
    catalog: dict[str, Catalogued]
    mapped: frozenset[str]  # event keys with a metric that exists in LaunchDarkly
    # Per event key, the names this request brought that the catalog lacks, and their
    # type (the first value's): written back once, after the checks.
    learned: dict[str, dict[str, str]] = field(default_factory=dict)


def import_settings() -> ImportSettings:
    row = ImportSettings.objects.first()
    if row is None:
        row, _ = ImportSettings.objects.get_or_create(tenant=current_tenant())
    return row


def context_kinds_cache_key(connection: LaunchDarklyConnection) -> str:
    return f"imports:kinds:{connection.pk}:{connection.project_key}"


def project_context_kinds(connection: LaunchDarklyConnection | None) -> frozenset[str] | None:
    """The connected project's context kinds (getContextKindsByProjectKey), cached;
    None when there is no project or LaunchDarkly cannot be asked just now."""
    if connection is None or not connection.is_usable or not connection.project_key:
        return None
    key = context_kinds_cache_key(connection)
    kinds = cache.get(key)
    if kinds is None:
        try:
            listed = client_for(connection).list_context_kinds(connection.project_key)
        except Exception:  # the check falls back to "any kind": LaunchDarkly decides
            return None
        kinds = sorted(str(k["key"]) for k in listed if k.get("key") and not k.get("archived"))
        cache.set(key, kinds, CONTEXT_KINDS_TTL_S)
    return frozenset(kinds)


# The workspace's connection and import settings, when the caller has read them.
Ready = tuple[LaunchDarklyConnection | None, ImportSettings]


def _context(items: list[Any], ready: Ready | None = None) -> Context:
    keys = {
        item["event"] for item in items if isinstance(item, dict) and _usable_key(item.get("event"))
    }
    connection, settings = ready or (connection_of_workspace(), import_settings())
    project = connection.project_key if connection else ""
    catalog: dict[str, Catalogued] = {}
    mapped_keys: list[str] = []
    filtered_keys: list[str] = []
    for key, kind, prop, removed, has_metric, has_filters, stored in _catalog_rows(keys, project):
        properties = json.loads(stored) if isinstance(stored, str) else stored
        catalog[key] = Catalogued(
            key,
            kind == ValueKind.NUMERIC,
            prop,
            bool(removed),
            seen=set(properties or ()),
            known_count=len(properties or ()),
        )
        if has_metric:
            mapped_keys.append(key)
        if has_filters:
            filtered_keys.append(key)
    mapped = frozenset(mapped_keys)
    if filtered_keys:  # a second query only for workspaces whose metrics filter
        for key, names in _forwarded_properties(project, filtered_keys).items():
            catalog[key] = replace(catalog[key], forwarded=names)
    return Context(
        settings=settings,
        now_ms=int(time.time() * 1000),
        kinds=project_context_kinds(connection),
        catalog=catalog,
        mapped=mapped,
    )


def _catalog_rows(keys: set[str], project: str) -> list[tuple[Any, ...]]:
    """The catalog's rows for these keys, each with whether a metric of the project
    exists in LaunchDarkly for it (synced, managed, not deleted) and whether a metric
    of the project, synced or still to be, filters on properties (its occurrences must
    carry them by the time it counts them): one query, as each costs the request.

    Written in SQL: built and compiled by the ORM, this query with its two EXISTS made
    reading the context cost 3.8 ms per request, against 0.6 ms so (PostgreSQL, 20
    events). So the tenant is in the WHERE clauses by hand, as `current_tenant()` (which
    fails closed) gives it, and every value is a parameter; only our own table and column
    names are formatted in."""
    if not keys:
        return []
    events, mappings = SourceEvent._meta.db_table, MetricMapping._meta.db_table
    tenant_id = current_tenant().pk
    # What `exclude(filters=[])` compiles to on each backend.
    has_filters = (
        "m.filters <> '[]'::jsonb" if db.vendor == "postgresql" else "json(m.filters) <> '[]'"
    )
    marks = ", ".join(["%s"] * len(keys))
    sql = (
        "SELECT e.key, e.value_kind, e.value_property, e.removed_at IS NOT NULL, "  # noqa: S608
        f"EXISTS (SELECT 1 FROM {mappings} m WHERE m.source_event_id = e.id "
        "AND m.tenant_id = %s AND m.project_key = %s AND m.managed = %s "
        "AND m.status <> %s AND m.applied_hash <> ''), "
        f"EXISTS (SELECT 1 FROM {mappings} m WHERE m.source_event_id = e.id "
        f"AND m.tenant_id = %s AND m.project_key = %s AND m.status <> %s AND {has_filters}), "
        f"e.properties FROM {events} e WHERE e.tenant_id = %s AND e.key IN ({marks})"
    )
    deleted = str(MappingStatus.DELETED)
    params: list[Any] = [tenant_id, project, True, deleted, tenant_id, project, deleted, tenant_id]
    params += sorted(keys)
    with db.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _filtering_mappings(project: str):
    return (
        MetricMapping.objects.filter(project_key=project)
        .exclude(status=MappingStatus.DELETED)
        .exclude(filters=[])
    )


def _forwarded_properties(project: str, keys: list[str]) -> dict[str, tuple[str, ...]]:
    """Per event key, the properties its metrics' filters read."""
    needed: dict[str, set[str]] = {}
    rows = (
        _filtering_mappings(project)
        .filter(source_event__key__in=keys)
        .values_list("source_event__key", "filters")
    )
    for key, filters in rows:
        needed.setdefault(key, set()).update(properties_needed(filters or []))
    return {key: tuple(sorted(names)) for key, names in needed.items()}


# An occurrence property's JSON type, as the catalog names it; `type()` and not
# isinstance, so True is not a number. Anything else (an object, a list, null) is not
# flat, and metric filters cannot test it.
_FLAT_TYPES: dict[type, str] = {
    str: PropertyType.STRING,
    bool: PropertyType.BOOLEAN,
    int: PropertyType.NUMBER,
    float: PropertyType.NUMBER,
}


def _learn(event: Catalogued, properties: dict[str, Any], ctx: Context) -> None:
    """Note the flat properties of an occurrence that the catalog does not know yet.
    The first type seen wins; a name the catalog knows is never looked at again, so a
    known one with another type now keeps its type (declared ones above all)."""
    for name, value in properties.items():
        if name in event.seen:
            continue
        kind = _FLAT_TYPES.get(type(value))
        if kind is None:
            if value is not None:  # nested: never flat for this request
                event.seen.add(name)
            continue  # null says nothing about the type; a later occurrence may
        event.seen.add(name)
        learned = ctx.learned.setdefault(event.key, {})
        if event.known_count + len(learned) < MAX_PROPERTIES and not property_name_problem(name):
            learned[name] = kind


def _forwarded(event: Catalogued, properties: dict[str, Any]) -> dict[str, Any]:
    """The occurrence's properties that the event's metric filters read, when flat:
    nothing else leaves the connector."""
    data = {}
    for name in event.forwarded:
        value = properties.get(name)
        if type(value) in _FLAT_TYPES and (type(value) is not float or math.isfinite(value)):
            data[name] = value  # NaN is not JSON: LaunchDarkly would refuse the batch
    return data


def _timestamp_ms(raw: Any, ctx: Context) -> int:
    if raw is None:
        return ctx.now_ms
    if isinstance(raw, bool):
        raise Refused("timestamp", "must be unix milliseconds or an ISO 8601 date-time")
    if isinstance(raw, int | float):
        if not math.isfinite(raw) or raw <= 0:
            raise Refused("timestamp", "must be a positive number of unix milliseconds")
        at = int(raw)
    elif isinstance(raw, str):
        try:
            parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            raise Refused("timestamp", "is not an ISO 8601 date-time") from None
        if parsed.tzinfo is None:
            raise Refused("timestamp", "needs a time zone (Z or +hh:mm)")
        at = int(parsed.timestamp() * 1000)
    else:
        raise Refused("timestamp", "must be unix milliseconds or an ISO 8601 date-time")
    if at > ctx.now_ms + FUTURE_SKEW_MS:
        raise Refused("timestamp", "is in the future (more than 5 minutes ahead)")
    oldest = ctx.now_ms - ctx.settings.max_age_hours * 3600 * 1000
    if at < oldest:
        raise Refused(
            "timestamp",
            f"is older than {ctx.settings.max_age_hours} hours: LaunchDarkly counts an "
            "event only if it arrives while an experiment iteration runs",
        )
    return at


def _context_keys(raw: Any, ctx: Context) -> dict[str, str]:
    if not isinstance(raw, dict) or not raw:
        raise Refused("contexts", 'must map identities to keys, e.g. {"user_id": "u-1"}')
    identity_map = ctx.settings.identity_map or {}
    keys: dict[str, str] = {}
    for name, value in raw.items():
        name = str(name)
        kind = str(identity_map.get(name, name))
        if not isinstance(value, str) or not value:
            raise Refused(f"contexts.{name}", "must be a non-empty string key")
        if len(value) > CONTEXT_KEY_MAX_LENGTH:
            raise Refused(f"contexts.{name}", f"is longer than {CONTEXT_KEY_MAX_LENGTH}")
        if not (is_storable(value) and is_storable(name)):
            raise Refused("contexts", "holds a NUL character or a lone surrogate")
        if ctx.kinds is not None and kind not in ctx.kinds:
            mapped_from = f" ({name} is mapped to {kind})" if kind != name else ""
            raise Refused(
                f"contexts.{name}",
                f"{kind} is not a context kind of the LaunchDarkly project{mapped_from}; "
                f"it has {', '.join(sorted(ctx.kinds)) or 'none'}. Map this identity "
                "in the event import settings.",
            )
        if kind in keys:
            raise Refused(f"contexts.{name}", f"a second key for context kind {kind}")
        keys[kind] = value
    return keys


def _value(item: dict[str, Any], event: Catalogued | None) -> float | None:
    raw = item.get("value")
    source = "value"
    if raw is None and event is not None and event.value_property:
        properties = item.get("properties")
        if isinstance(properties, dict):
            raw, source = properties.get(event.value_property), f"properties.{event.value_property}"
    if raw is None:
        if event is not None and event.numeric:
            where = (
                f"value (or properties.{event.value_property})"
                if event.value_property
                else ("value")
            )
            raise Refused(where, "is required: the event is numeric")
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        raise Refused(source, "must be a number")
    return raw


# An accepted occurrence as stored: (event key, occurred at ms, LaunchDarkly body).
Stored = tuple[str, int, str]
_compact = json.JSONEncoder(separators=(",", ":")).encode


def _check(index: int, item: Any, ctx: Context) -> tuple[ItemResult, Stored | None]:
    """One item's result, and the occurrence to store when it is accepted."""
    try:
        if not isinstance(item, dict):
            raise Refused("item", "must be an object")
        key = item.get("event")
        if not isinstance(key, str) or not key:
            raise Refused("event", "must be a non-empty string, the event's key")
        if len(key) > KEY_MAX_LENGTH:
            raise Refused("event", f"is longer than {KEY_MAX_LENGTH} characters")
        if not is_storable(key):
            raise Refused("event", "holds a NUL character or a lone surrogate")
        event = ctx.catalog.get(key)
        properties = item.get("properties")
        if properties is not None and not isinstance(properties, dict):
            raise Refused("properties", "must be an object of flat values")
        at = _timestamp_ms(item.get("timestamp"), ctx)
        contexts = _context_keys(item.get("contexts"), ctx)
        value = _value(item, event)
        if event is None or event.removed:
            if ctx.settings.unknown_events == UnknownEvents.COUNT:
                return ItemResult(index, COUNTED), None
            why = "was removed at the source" if event else "is not in the workspace's catalog"
            raise Refused("event", f"{why}; add it to the catalog first")
    except Refused as refused:
        return ItemResult(
            index, REFUSED, [{"field": refused.field, "reason": refused.reason}]
        ), None
    if properties and not properties.keys() <= event.seen:
        _learn(event, properties, ctx)
    if key not in ctx.mapped:
        # Nothing in LaunchDarkly would count it: no metric measures this event yet.
        return ItemResult(index, NOT_MAPPED), None
    body: dict[str, Any] = {
        "kind": "custom",
        "key": key,
        "creationDate": at,
        "contextKeys": contexts,
    }
    if value is not None:
        body["metricValue"] = value
    if event.forwarded and properties:
        data = _forwarded(event, properties)
        if data:
            body["data"] = data
    return ItemResult(index, ACCEPTED), (key, at, _compact(body))


def occurrences_ingest(*, items: list[Any], ready: Ready | None = None) -> IngestReport:
    """Check every item, store the accepted ones, count them all; returns one result
    per item, in order. Stored and counted in one transaction: the caller answers only
    after it commits, so an acknowledged occurrence is never lost. `ready`: the
    connection and settings the caller read already (spares reading them again)."""
    ctx = _context(items, ready)
    results: list[ItemResult] = []
    accepted: list[Stored] = []
    tally: Counter[tuple[str, str]] = Counter()
    for index, item in enumerate(items):
        result, occurrence = _check(index, item, ctx)
        results.append(result)
        raw_key = item.get("event") if isinstance(item, dict) else None
        # Only a refused item's key may be unusable: the others passed its checks.
        usable = result.status != REFUSED or _usable_key(raw_key)
        key = raw_key if usable and isinstance(raw_key, str) else ""
        tally[(key, result.status)] += 1
        if occurrence is not None:
            accepted.append(occurrence)
    with transaction.atomic():
        if accepted:
            buffer_write_lock()  # first, before any row lock: see there
            _store(accepted, ctx.now_ms)
        counts_add(
            hour=_hour(ctx.now_ms),
            environment_key="",
            rows=_received_rows(tally),
        )
        _touch_catalog(accepted, {key: names for key, names in ctx.learned.items() if names})
    if accepted:
        # delivery imports this module; the wake is only needed here, after commit.
        from connector.imports.delivery import wake_delivery

        environments = list(ctx.settings.environments or [])
        tenant_id = current_tenant().pk
        transaction.on_commit(lambda: wake_delivery(tenant_id, environments))
    return IngestReport(results)


# PostgreSQL advisory lock ids (namespace, tenant) of a workspace's buffer.
BUFFER_LOCK_NAMESPACE = 0x1_5E_0F


def buffer_write_lock() -> None:
    """Ids are taken from a sequence when rows are inserted, but transactions commit
    in any order: without this, a batch cut could read ids 1..500 and 1001..1500 while
    501..1000 are not yet committed, and the cursor would pass them by. So writers to
    the buffer hold this lock shared until they commit, and a cut takes it exclusively
    (buffer_cut_lock): it waits for the writers in flight, and every writer after it
    gets higher ids. Taken first in a transaction, before any row lock, so a queued
    cut never closes a cycle. SQLite needs none: its writers take turns (IMMEDIATE)."""
    if db.vendor == "postgresql":
        with db.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock_shared(%s, %s)",
                [BUFFER_LOCK_NAMESPACE, current_tenant().pk],
            )


def buffer_cut_lock() -> None:
    """The exclusive side of buffer_write_lock, for a batch cut (in its transaction)."""
    if db.vendor == "postgresql":
        with db.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, %s)",
                [BUFFER_LOCK_NAMESPACE, current_tenant().pk],
            )


_COLUMNS = ("tenant_id", "event_key", "occurred_at_ms", "received_at_ms", "body")


def _store(accepted: list[Stored], received_ms: int) -> None:
    """Insert the accepted occurrences: COPY on PostgreSQL (several times faster than
    an INSERT of many rows, whose parameters psycopg would quote in Python), one
    prepared INSERT run for every row elsewhere; no model instances either way."""
    table = Occurrence._meta.db_table
    tenant_id = current_tenant().pk
    rows = [(tenant_id, key, at, received_ms, body) for key, at, body in accepted]
    with db.cursor() as cursor:
        if db.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({', '.join(_COLUMNS)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join(["%s"] * len(_COLUMNS))
            cursor.executemany(
                f"INSERT INTO {table} ({', '.join(_COLUMNS)}) VALUES ({marks})",  # noqa: S608
                rows,
            )


def _usable_key(key: Any) -> bool:
    return isinstance(key, str) and 0 < len(key) <= KEY_MAX_LENGTH and is_storable(key)


def _hour(ms: int) -> datetime:
    return datetime.fromtimestamp(ms // 3_600_000 * 3600, tz=UTC)


def _received_rows(tally: Counter[tuple[str, str]]) -> dict[str, dict[str, int]]:
    rows: dict[str, dict[str, int]] = {}
    column = {ACCEPTED: "received", COUNTED: "received", REFUSED: "refused"}
    for (key, status), count in tally.items():
        row = rows.setdefault(key, {})
        if status == NOT_MAPPED:
            row["received"] = row.get("received", 0) + count
            row["not_mapped"] = row.get("not_mapped", 0) + count
        else:
            name = column[status]
            row[name] = row.get(name, 0) + count
    return rows


COUNT_COLUMNS = ("received", "refused", "not_mapped", "delivered", "dead")


def counts_add(*, hour: datetime, environment_key: str, rows: dict[str, dict[str, int]]) -> None:
    """Add to the hour's counts per event key, in one statement: an upsert that adds
    (ON CONFLICT ... DO UPDATE), which PostgreSQL and SQLite both understand, so
    concurrent requests never lose a count."""
    if not rows:
        return
    table = "imports_importcount"
    tenant_id = current_tenant().pk
    columns = ", ".join(COUNT_COLUMNS)
    row = "(" + ", ".join(["%s"] * (4 + len(COUNT_COLUMNS))) + ")"
    params: list[Any] = []
    for key, counts in sorted(rows.items()):  # one order: concurrent upserts never deadlock
        params += [tenant_id, hour, environment_key, key]
        params += [counts.get(name, 0) for name in COUNT_COLUMNS]
    updates = ", ".join(f"{name} = {table}.{name} + excluded.{name}" for name in COUNT_COLUMNS)
    # Only our own table and column names are formatted in; every value is a parameter.
    sql = (
        f"INSERT INTO {table} (tenant_id, hour, environment_key, event_key, {columns}) "  # noqa: S608
        f"VALUES {', '.join([row] * len(rows))} "
        f"ON CONFLICT (tenant_id, hour, environment_key, event_key) DO UPDATE SET {updates}"
    )
    with db.cursor() as cursor:
        cursor.execute(sql, params)


def _touch_catalog(accepted: Iterable[Stored], learned: dict[str, dict[str, str]]) -> None:
    """What the occurrences tell the catalog: "last seen" and the properties learned.
    In one pass in key order: concurrent requests then lock the events' rows in the
    same order, and cannot deadlock."""
    seen = _last_seen_due(accepted)
    for key in sorted(seen.keys() | learned.keys()):
        if key in learned:
            _properties_add(key, learned[key])
        if key in seen:
            at = seen[key]
            SourceEvent.objects.filter(key=key).filter(
                Q(last_seen__isnull=True) | Q(last_seen__lt=at)
            ).update(last_seen=at)
            SourceEvent.objects.filter(key=key, first_seen__isnull=True).update(first_seen=at)


def _last_seen_due(accepted: Iterable[Stored]) -> dict[str, datetime]:
    """The picker's "last seen" from real occurrences, due at most once a minute per
    event (a busy event would otherwise cost a write per batch)."""
    latest: dict[str, int] = {}
    for key, at_ms, _ in accepted:
        if at_ms > latest.get(key, 0):
            latest[key] = at_ms
    tenant_id = current_tenant().pk
    names = {key: f"imports:seen:{tenant_id}:{key}" for key in latest}
    # One round trip for the events written within the minute, the usual case.
    recent = cache.get_many(list(names.values()))
    return {
        key: datetime.fromtimestamp(at_ms / 1000, tz=UTC)
        for key, at_ms in latest.items()
        if names[key] not in recent and cache.add(names[key], 1, LAST_SEEN_PRECISION_S)
    }


class _PropertiesAdded(Func):
    """The stored properties with `learned` added where the name is new: what is stored
    wins, whatever another request declared or learned since this one read the
    catalog. In SQL, so two requests learning at once both keep their names."""

    output_field = JSONField()

    def __init__(self, learned: dict[str, str]) -> None:
        super().__init__(Value(learned, output_field=JSONField()), F("properties"))

    def as_postgresql(self, compiler, connection, **extra):  # type: ignore[no-untyped-def]
        # jsonb `a || b`: b's value wins for a key both hold.
        return self.as_sql(compiler, connection, template="(%(expressions)s)", arg_joiner=" || ")

    def as_sqlite(self, compiler, connection, **extra):  # type: ignore[no-untyped-def]
        # RFC 7396 merge patch of the stored onto the learned: the stored wins.
        return self.as_sql(compiler, connection, function="json_patch")


def _properties_add(key: str, learned: dict[str, str]) -> None:
    SourceEvent.objects.filter(key=key).update(
        properties=_PropertiesAdded(learned), updated_at=timezone.now()
    )


def volumes_refresh() -> int:
    """The picker's "volume (30 d)": received occurrences over 30 days, per event."""
    since = timezone.now() - timedelta(days=30)
    totals = dict(
        ImportCount.objects.filter(hour__gte=since, environment_key="")
        .values("event_key")
        .annotate(total=Sum("received"))
        .values_list("event_key", "total")
    )
    changed = 0
    for key, total in totals.items():
        changed += SourceEvent.objects.filter(key=key).exclude(volume=total).update(volume=total)
    return changed


def occurrences_check(*, items: list[Any]) -> list[ItemResult]:
    """What `occurrences_ingest` would answer for these items, storing and counting
    nothing: the preview of an uploaded file of occurrences."""
    ctx = _context(items)
    return [_check(index, item, ctx)[0] for index, item in enumerate(items)]
