"""Writes to the event catalog of the workspace in scope, and to its API keys.

Every way in (the HTTP API, a file upload, a source adapter, the demo seed) goes
through `events_upsert`, so there is one validation and one upsert path. A batch
costs a constant number of queries whatever its size: one read of the existing
rows for its keys, one bulk insert, one bulk update and one audit row.
"""

from __future__ import annotations

import hashlib
import secrets
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Field
from django.utils import timezone

from connector.sources.models import ApiKey, CatalogUpload, SourceEvent, ValueKind
from connector.sources.validation import CleanDefinition, FieldError, validate_definition
from tenants.models import AuditAction
from tenants.scope import current_tenant
from tenants.services import audit_record

if TYPE_CHECKING:
    from connector.sources.adapters.base import SourceAdapter
    from tenants.models import Tenant, User

MAX_BATCH = 1000
API_KEY_PREFIX = "lmc_"
# Fields a definition can change; `removed_at` is cleared when a removed event comes back.
_UPDATABLE = ("name", "description", "value_kind", "unit", "value_property", "volume")
# What an adapter only guesses (see `catalog_import`).
ADAPTER_DEFAULTS = frozenset({"value_property", "properties"})


class ItemStatus(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    REJECTED = "rejected"


@dataclass
class ItemResult:
    index: int
    key: str | None
    status: ItemStatus
    errors: list[FieldError] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)  # for "updated": which fields

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "key": self.key,
            "status": str(self.status),
            "errors": [e.as_dict() for e in self.errors],
        }


def counts_of(results: Iterable[ItemResult]) -> dict[str, int]:
    counted = Counter(str(r.status) for r in results)
    return {status.value: counted.get(status.value, 0) for status in ItemStatus}


@dataclass
class UpsertPlan:
    results: list[ItemResult]
    to_create: list[SourceEvent]
    to_update: list[SourceEvent]
    update_fields: set[str]


def _merge(
    event: SourceEvent, clean: CleanDefinition, defaults: frozenset[str] = frozenset()
) -> list[str]:
    """Apply a definition to a stored event; returns the names of changed fields.
    A field in `defaults` is only filled in where the stored one is empty."""
    changed = []
    for name in _UPDATABLE:
        if name in defaults and getattr(event, name):
            continue
        if name in clean.provided and getattr(event, name) != getattr(clean, name):
            setattr(event, name, getattr(clean, name))
            changed.append(name)
    if "properties" in clean.provided:
        merged = properties_merged(
            event.properties, clean.properties, guessed="properties" in defaults
        )
        if merged != event.properties:
            event.properties = merged
            changed.append("properties")
    # Seen times only widen: the earliest first sighting, the latest last one.
    if clean.first_seen and (event.first_seen is None or clean.first_seen < event.first_seen):
        event.first_seen = clean.first_seen
        changed.append("first_seen")
    if clean.last_seen and (event.last_seen is None or clean.last_seen > event.last_seen):
        event.last_seen = clean.last_seen
        changed.append("last_seen")
    if event.removed_at is not None:  # the source knows it again
        event.removed_at = None
        changed.append("removed_at")
    return changed


def properties_merged(
    stored: dict[str, str], declared: dict[str, str], *, guessed: bool = False
) -> dict[str, str]:
    """The event's properties after a definition declares some: declared names are
    added to the stored ones, never removed (occurrences would teach them again), and a
    declared type replaces a stored one, which may only have been learned from the first
    occurrence that sent it. A `guessed` declaration (an adapter's) only adds names."""
    if guessed:
        return {**declared, **stored}
    return {**stored, **declared}


def _key_of(raw: Any) -> str | None:
    key = raw.get("key") if isinstance(raw, dict) else None
    return key if isinstance(key, str) else None


def event_of_definition(clean: CleanDefinition, *, tenant: Tenant, origin: str) -> SourceEvent:
    """The new (unsaved) event a valid definition describes."""
    return SourceEvent(
        tenant=tenant,
        key=clean.key,
        name=clean.name,
        description=clean.description,
        value_kind=clean.value_kind,
        unit=clean.unit,
        value_property=clean.value_property,
        properties=clean.properties,
        first_seen=clean.first_seen,
        last_seen=clean.last_seen,
        volume=clean.volume,
        origin=origin,
    )


def events_plan(
    *,
    definitions: Sequence[Any],
    origin: str,
    lock: bool = False,
    defaults: frozenset[str] = frozenset(),
) -> UpsertPlan:
    """What `events_upsert` would do with these definitions, without writing.

    Used as is by the upload preview. Duplicate keys within one batch are all
    rejected: which of them is meant cannot be known, and nothing is dropped silently."""
    tenant = current_tenant()
    results: list[ItemResult] = []
    valid: dict[int, CleanDefinition] = {}
    key_positions: dict[str, list[int]] = {}
    for index, raw in enumerate(definitions):
        clean, errors = validate_definition(raw)
        key = _key_of(raw)
        results.append(
            ItemResult(index=index, key=key, status=ItemStatus.REJECTED, errors=list(errors))
        )
        if clean is not None:
            valid[index] = clean
            key_positions.setdefault(clean.key, []).append(index)
    for positions in key_positions.values():
        if len(positions) > 1:
            where = ", ".join(str(p) for p in positions)
            for position in positions:
                results[position].errors.append(
                    FieldError("key", f"appears more than once in this batch (items {where})")
                )
                valid.pop(position)

    rows = SourceEvent.objects.filter(key__in=[c.key for c in valid.values()])
    if lock:
        rows = rows.select_for_update()
    existing = {event.key: event for event in rows}
    to_create, to_update, update_fields = [], [], set()
    now = timezone.now()
    for index, clean in valid.items():
        result = results[index]
        event = existing.get(clean.key)
        if event is None:
            to_create.append(event_of_definition(clean, tenant=tenant, origin=origin))
            result.status = ItemStatus.CREATED
            continue
        changed = _merge(event, clean, defaults)
        if changed:
            event.updated_at = now  # bulk_update skips auto_now
            to_update.append(event)
            update_fields.update(changed)
            result.status, result.changed = ItemStatus.UPDATED, changed
        else:
            result.status = ItemStatus.UNCHANGED
    return UpsertPlan(results, to_create, to_update, update_fields)


def _write_updates(events: list[SourceEvent], fields: set[str]) -> None:
    """One parameterised UPDATE, executed for many rows in a single call.

    Not `bulk_update`: it builds a CASE WHEN per field with a branch per row, and
    Django spends ~1 s of Python per 1,000 rows resolving those expressions, which
    alone would blow the 10,000-definitions-in-5-s budget. `executemany` costs
    one round trip with psycopg 3 (pipeline mode) and is in-process on SQLite.
    The tenant is in the WHERE clause too: these rows were read in scope, and a
    raw statement must not be the one place that forgets it."""
    model_fields = [
        field
        for name in [*sorted(fields), "updated_at"]
        if isinstance(field := SourceEvent._meta.get_field(name), Field)
    ]
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(str(f.column))} = %s" for f in model_fields)
    sql = (
        f"UPDATE {quote(SourceEvent._meta.db_table)} SET {assignments} "  # noqa: S608
        f"WHERE {quote('id')} = %s AND {quote('tenant_id')} = %s"
    )
    rows = [
        [f.get_db_prep_save(getattr(event, f.attname), connection) for f in model_fields]
        + [event.pk, event.tenant_id]
        for event in events
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def events_upsert(
    *,
    definitions: Sequence[Any],
    origin: str,
    actor: User | None = None,
    via: str = "",
    defaults: frozenset[str] = frozenset(),
) -> list[ItemResult]:
    """Create or update events by key in the workspace in scope (idempotent).

    Good items are stored even when others are rejected; each result says which.
    `via` names the channel in the audit log (an API key's name, a file name).
    `defaults` names fields that are only guesses: they never replace a stored value."""
    if len(definitions) > MAX_BATCH:
        raise ValueError(f"at most {MAX_BATCH} definitions per batch")
    for attempt in range(2):
        try:
            with transaction.atomic():
                plan = events_plan(
                    definitions=definitions, origin=origin, lock=True, defaults=defaults
                )
                SourceEvent.objects.bulk_create(plan.to_create)
                if plan.to_update:
                    _write_updates(plan.to_update, plan.update_fields)
                counts = counts_of(plan.results)
                if counts["created"] or counts["updated"] or counts["rejected"]:
                    audit_record(
                        actor=actor,
                        action=AuditAction.EVENTS_UPSERTED,
                        target=via[:200],
                        details={"origin": origin, **counts},
                    )
                return plan.results
        except IntegrityError:
            # Another request created one of these keys between our read and our
            # insert; reading again turns those into updates.
            if attempt:
                raise
    raise AssertionError("unreachable")


@dataclass
class ArchiveResult:
    key: str
    status: str  # archived | already_archived | not_found

    def as_dict(self) -> dict[str, str]:
        return {"key": self.key, "status": self.status}


@transaction.atomic
def events_archive(*, keys: Sequence[str], actor: User | None = None, via: str = "") -> list:
    """Mark events as gone from the source (they stay, so their metrics can be shown
    as orphans). Unknown keys are reported, not errors."""
    now = timezone.now()
    found = {
        key: removed_at
        for key, removed_at in SourceEvent.objects.filter(key__in=keys).values_list(
            "key", "removed_at"
        )
    }
    results = []
    for key in dict.fromkeys(keys):
        if key not in found:
            results.append(ArchiveResult(key, "not_found"))
        elif found[key] is not None:
            results.append(ArchiveResult(key, "already_archived"))
        else:
            results.append(ArchiveResult(key, "archived"))
    archived = [r.key for r in results if r.status == "archived"]
    if archived:
        SourceEvent.objects.filter(key__in=archived).update(removed_at=now, updated_at=now)
        audit_record(
            actor=actor,
            action=AuditAction.EVENTS_ARCHIVED,
            target=via[:200],
            details={"count": len(archived), "keys": archived[:20]},
        )
    return results


@transaction.atomic
def value_properties_set(*, actor: User, values: dict[int, str], via: str = "") -> list[str]:
    """Set by hand the value property of numeric events of the workspace in scope, by
    primary key; returns the keys of the events it changed. Not `events_upsert`: that
    would bring a removed event back, and wants the whole definition. What is set here
    is never replaced by an adapter's guess (`catalog_import`)."""
    now = timezone.now()
    changed = []
    for event in SourceEvent.objects.select_for_update().filter(
        pk__in=list(values), value_kind=ValueKind.NUMERIC
    ):
        if event.value_property != values[event.pk]:
            event.value_property, event.updated_at = values[event.pk], now
            changed.append(event)
    SourceEvent.objects.bulk_update(changed, ["value_property", "updated_at"])
    keys = sorted(event.key for event in changed)
    if keys:
        audit_record(
            actor=actor,
            action=AuditAction.EVENTS_UPSERTED,
            target=via[:200],
            details={"origin": "settings", "updated": len(keys), "keys": keys[:20]},
        )
    return keys


# --- API keys -------------------------------------------------------------------------


def api_key_hash(raw_key: str) -> str:
    # A 256-bit random key needs no slow hash: SHA-256 cannot be brute-forced back to it.
    return hashlib.sha256(raw_key.encode()).hexdigest()


@transaction.atomic
def api_key_create(*, actor: User, name: str) -> tuple[ApiKey, str]:
    """A new API key for the workspace in scope. The raw key is returned once and
    never stored; only its hash and first characters are."""
    name = name.strip()
    if not name:
        raise ValidationError("Give the key a name, e.g. the system that will use it.")
    if len(name) > 100:
        raise ValidationError("Use at most 100 characters for the name.")
    raw_key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    api_key = ApiKey.objects.create(
        name=name, prefix=raw_key[:12], key_hash=api_key_hash(raw_key), created_by=actor
    )
    audit_record(
        actor=actor,
        action=AuditAction.API_KEY_CREATED,
        target=name,
        details={"prefix": api_key.prefix},
    )
    return api_key, raw_key


@transaction.atomic
def api_key_revoke(*, actor: User, api_key: ApiKey) -> ApiKey:
    """Revoke a key of the workspace in scope; requests with it answer 401 from now on."""
    api_key = ApiKey.objects.select_for_update().get(pk=api_key.pk)
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
        audit_record(
            actor=actor,
            action=AuditAction.API_KEY_REVOKED,
            target=api_key.name,
            details={"prefix": api_key.prefix},
        )
    return api_key


# --- Uploads ----------------------------------------------------------------------------


def upload_create(*, actor: User, filename: str, file_format: str, rows: list) -> CatalogUpload:
    return CatalogUpload.objects.create(
        filename=filename[:200], file_format=file_format, rows=rows, created_by=actor
    )


class UploadAlreadyApplied(Exception):
    """The upload was applied before; applying twice would report misleading counts."""


class UploadHasErrors(Exception):
    """Rows have errors, and the lines to skip were not named (or not those)."""


@dataclass
class UploadApplied:
    results: list[ItemResult]
    skipped: str  # "Skipped lines 3 and 7, which have errors.", or "" when none were


def upload_apply(
    *, actor: User, upload: CatalogUpload, skip_lines: Sequence[int] | None = ()
) -> UploadApplied:
    """Apply a previewed upload: its valid rows go through `events_upsert`.

    While rows have errors nothing is applied unless `skip_lines` names exactly the
    lines of those rows, in order (the preview's `skip_value`): nothing is ever left
    out that the person did not choose to leave out."""
    from connector.sources.upload import MAX_ROWS, definitions_of, preview

    with transaction.atomic():
        upload = CatalogUpload.objects.select_for_update().get(pk=upload.pk)
        if upload.applied_at is not None:
            raise UploadAlreadyApplied("This file was applied already.")
        checked = preview(upload)
        if checked.error_rows and (
            not checked.can_skip or list(skip_lines or ()) != checked.error_lines
        ):
            raise UploadHasErrors(checked.refusal)
        definitions = definitions_of(upload)
        assert len(definitions) <= MAX_ROWS
        results: list[ItemResult] = []
        for start in range(0, len(definitions), MAX_BATCH):
            results += events_upsert(
                definitions=definitions[start : start + MAX_BATCH],
                origin="upload",
                actor=actor,
                via=upload.filename,
            )
        upload.applied_at = timezone.now()
        upload.save(update_fields=["applied_at"])
    return UploadApplied(results, checked.skipped_text if checked.error_rows else "")


# --- Source adapters ----------------------------------------------------------------------


@dataclass
class ImportOutcome:
    counts: dict[str, int]
    rejected: list[ItemResult]
    removed: int


def catalog_import(
    *, adapter: SourceAdapter, actor: User | None = None, now: datetime | None = None
) -> ImportOutcome:
    """Pull the adapter's whole catalog into the workspace in scope, then mark the
    events of that origin that the source no longer lists as removed.

    The catalog is fetched completely before anything is written, so a failed
    fetch cannot mark every event as removed.

    An adapter's `value_property` is a guess (PostHog's: the first numeric property
    with a telling name), so it only fills in an empty one. The stored one may have
    been set by hand, which the connector does not record: so any stored one is kept,
    even when the source calls the event a conversion (the API then shows none, and it
    is used again if the event turns numeric). Its `properties` only add names, never
    change a known type: PostHog infers types from the values it saw, which makes them
    no better than the ones learned here, and worse than declared ones."""
    definitions = [d.as_definition() for d in adapter.fetch_catalog()]
    results: list[ItemResult] = []
    for start in range(0, len(definitions), MAX_BATCH):
        results += events_upsert(
            definitions=definitions[start : start + MAX_BATCH],
            origin=adapter.origin,
            actor=actor,
            via=f"import from {adapter.origin}",
            defaults=ADAPTER_DEFAULTS,
        )
    listed = {d["key"] for d in definitions}
    now = now or timezone.now()
    with transaction.atomic():
        gone = [
            pk
            for pk, key in SourceEvent.objects.filter(
                origin=adapter.origin, removed_at__isnull=True
            ).values_list("pk", "key")
            if key not in listed
        ]
        for start in range(0, len(gone), MAX_BATCH):
            SourceEvent.objects.filter(pk__in=gone[start : start + MAX_BATCH]).update(
                removed_at=now, updated_at=now
            )
        if gone:
            audit_record(
                actor=actor,
                action=AuditAction.EVENTS_REMOVED_AT_SOURCE,
                target=adapter.origin,
                details={"count": len(gone)},
            )
    return ImportOutcome(
        counts=counts_of(results),
        rejected=[r for r in results if r.status == ItemStatus.REJECTED],
        removed=len(gone),
    )
