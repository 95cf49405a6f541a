"""Delivery: the buffer drained per workspace and environment into LaunchDarkly's
metric event import, exactly once.

A batch is cut (a fixed run of buffered ids, recorded before anything is sent), sent
gzipped with a payload id derived from its contents, and marked delivered on the 202.
A worker that dies between sending and marking leaves the batch pending: it is rebuilt
from the same rows, so it carries the same payload id, and LaunchDarkly counts it
once. Failures follow the sync engine's classes: a rate limit waits (with jitter), the
network and 5xx retry with backoff, any other 4xx (a 401 above all: "this token cannot
import events") is a dead letter that a person may replay; nothing breaks the
connection itself.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import random
import time
import uuid
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Max, Min, Q
from django.utils import timezone
from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import RedisError

from connector.connections.gate import jittered_wait
from connector.connections.models import AuthKind, LaunchDarklyConnection
from connector.connections.selectors import connection_of_workspace
from connector.connections.services import (
    ReauthorizationRequired,
    budget_for,
    connection_fresh_access_token,
)
from connector.imports.ingest import buffer_cut_lock, counts_add, import_settings
from connector.imports.models import (
    BatchStatus,
    ImportBatch,
    ImportCursor,
    ImportSettings,
    Occurrence,
)
from connector.launchdarkly import errors, instances
from connector.launchdarkly.client import EventImportClient
from connector.launchdarkly.ratelimit import RateLimitInfo
from connector.shared_state import LockTimeout, shared_lock
from tenants.scope import current_tenant

log = logging.getLogger(__name__)

ROUTE = "POST /v2/event-data-import/{projectKey}/{environmentKey}"
# LaunchDarkly: at most 10 MB per request. Bodies are cut well below it, uncompressed.
MAX_BATCH_BYTES = 8 * 1000 * 1000
DEAD_AFTER_ATTEMPTS = 12
CANNOT_IMPORT = (
    "This token cannot import events: LaunchDarkly answered 401. Paste an import token "
    "whose role allows importEventData (Settings, LaunchDarkly), then replay this batch."
)
# Receipt-to-delivery delay buckets (upper bounds, ms) kept per delivered batch.
DELAY_BUCKETS_MS = (100, 250, 500, 1000, 2000, 5000, 10_000, 30_000, 60_000, 300_000, 3_600_000)


def wake_delivery(tenant_id: int, environments: list[str]) -> None:
    """After new occurrences commit: make sure a drain runs for each environment soon.
    Wakes within a second are merged into one task (a drain that starts clears the
    mark, so a commit after it wakes another); with the queue down, the sweeper (beat)
    starts the drain once it is back."""
    from connector.imports.tasks import imports_drain

    for environment in environments:
        if not cache.add(_wake_key(tenant_id, environment), 1, 1):
            continue
        try:
            imports_drain.apply_async((tenant_id, environment), countdown=0.2)
        except (KombuOperationalError, RedisError, OSError) as exc:
            log.warning("task queue unreachable; the import sweeper delivers later: %s", exc)


def _wake_key(tenant_id: int, environment: str) -> str:
    return f"imports:wake:{tenant_id}:{environment}"


@dataclass
class DrainReport:
    sent: int = 0
    delivered: int = 0
    wait_until: float | None = None  # rate limited or backing off: drain again then
    more: bool = False  # the slice ran out with work left


def drain(environment: str) -> DrainReport:
    """Deliver the environment's buffer until it is empty, the slice runs out, or
    LaunchDarkly asks to wait. One drain per environment at a time (a shared lock); a
    second one that finds it taken leaves the work to the first."""
    tenant = current_tenant()
    report = DrainReport()
    try:
        # The lock outlives a drain's slice plus one send (a worker killed while holding
        # it blocks the environment no longer than that).
        hold = settings.IMPORT_DRAIN_SLICE_S + settings.SYNC_READ_TIMEOUT_S + 5
        with shared_lock(f"imports:drain:{tenant.pk}:{environment}", timeout=hold, wait=0.5):
            # Before reading: an occurrence committed from now on wakes a new drain,
            # and one committed before is read here (its wake merged into this one).
            cache.delete(_wake_key(tenant.pk, environment))
            _drain_locked(environment, report)
    except LockTimeout:
        report.more = True  # another worker drains it; look again a little later
    return report


def _drain_locked(environment: str, report: DrainReport) -> None:
    connection = connection_of_workspace()
    if connection is None or not connection.is_usable or not connection.project_key:
        return
    if environment not in (import_settings().environments or []):
        return
    started = time.monotonic()
    while True:
        if time.monotonic() - started > settings.IMPORT_DRAIN_SLICE_S:
            report.more = True
            return
        due = _due_batch(environment)
        cut = None if due else _batch_cut(environment, connection.project_key)
        batch = due or (cut.batch if cut else None)
        if batch is None:
            report.wait_until = _earliest_retry(environment)
            return
        report.sent += 1
        outcome = batch_send(batch, connection, cut=cut)
        if outcome == BatchStatus.DELIVERED:
            report.delivered += batch.count
        elif batch.status == BatchStatus.RETRYING:
            # Waiting (a rate limit or a backoff): the rest waits with it.
            report.wait_until = batch.next_attempt_at.timestamp() if batch.next_attempt_at else None
            return


def _due_batch(environment: str) -> ImportBatch | None:
    now = timezone.now()
    return (
        ImportBatch.objects.filter(
            environment_key=environment, status__in=(BatchStatus.PENDING, BatchStatus.RETRYING)
        )
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .order_by("first_id")
        .first()
    )


def _earliest_retry(environment: str) -> float | None:
    at = ImportBatch.objects.filter(
        environment_key=environment, status=BatchStatus.RETRYING
    ).aggregate(at=Min("next_attempt_at"))["at"]
    return at.timestamp() if at else None


def payload_id_for(environment: str, first_id: int, last_id: int, body: bytes) -> str:
    """A UUID derived from what the batch holds: rebuilt after a crash, it is the same."""
    digest = hashlib.sha256(body).hexdigest()
    name = f"{current_tenant().pk}:{environment}:{first_id}:{last_id}:{digest}"
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"metric-connector:{name}"))


Row = tuple[str, int, str]  # an occurrence's event key, received at (ms), body


@dataclass
class Cut:
    """A batch just cut, with what it was cut from: sent without reading it again."""

    batch: ImportBatch
    rows: list[Row]
    body: bytes


def batch_cut(environment: str, project_key: str) -> ImportBatch | None:
    """Record the next run of buffered occurrences as a batch, before sending it."""
    cut = _batch_cut(environment, project_key)
    return cut.batch if cut else None


def _batch_cut(environment: str, project_key: str) -> Cut | None:
    with transaction.atomic():
        buffer_cut_lock()  # every id below the newest one read is committed
        cursor, _ = ImportCursor.objects.select_for_update().get_or_create(
            tenant=current_tenant(), environment_key=environment
        )
        rows = list(
            Occurrence.objects.filter(id__gt=cursor.batched_through_id)
            .order_by("id")
            .values_list("id", "event_key", "received_at_ms", "body")[
                : settings.IMPORT_BATCH_EVENTS
            ]
        )
        if not rows:
            return None
        size, kept = 2, 0
        for *_, text in rows:
            size += len(text) + 1
            if kept and size > MAX_BATCH_BYTES:
                break
            kept += 1
        rows = rows[:kept]
        body = _payload(text for *_, text in rows)
        batch = ImportBatch.objects.create(
            environment_key=environment,
            project_key=project_key,
            first_id=rows[0][0],
            last_id=rows[-1][0],
            count=len(rows),
            size_bytes=len(body),
            payload_id=payload_id_for(environment, rows[0][0], rows[-1][0], body),
        )
        cursor.batched_through_id = rows[-1][0]
        cursor.save(update_fields=["batched_through_id"])
        return Cut(batch, [(key, received, text) for _, key, received, text in rows], body)


def _payload(bodies) -> bytes:
    return b"[" + b",".join(body.encode() for body in bodies) + b"]"


def _rows(batch: ImportBatch) -> list[Row]:
    return list(
        Occurrence.objects.filter(id__gte=batch.first_id, id__lte=batch.last_id)
        .order_by("id")
        .values_list("event_key", "received_at_ms", "body")
    )


def _client(connection: LaunchDarklyConnection, observe) -> EventImportClient:
    """The import token when the workspace pasted one (LaunchDarkly recommends a
    dedicated token allowing importEventData), else the connection's own token."""
    token = connection.import_token()
    auth_kind = AuthKind.API_TOKEN
    if not token:
        token = connection_fresh_access_token(connection=connection)
        auth_kind = AuthKind(connection.auth_kind)
    return EventImportClient(
        base_url=instances.events_base_url(connection.instance),
        token=token,
        auth_kind=auth_kind,
        on_rate_limit=observe,
        timeout=(3.05, settings.SYNC_READ_TIMEOUT_S),
    )


def batch_send(
    batch: ImportBatch, connection: LaunchDarklyConnection, *, cut: Cut | None = None
) -> str:
    """Send one batch through the account's shared rate budget; returns its status.
    A batch cut by this drain is sent as cut; any other is rebuilt from the buffer."""
    if cut is not None and cut.batch is batch:
        rows, body = cut.rows, cut.body
    else:
        rows = _rows(batch)
        body = _payload(body for _, _, body in rows)
    if (
        len(rows) != batch.count
        or payload_id_for(batch.environment_key, batch.first_id, batch.last_id, body)
        != batch.payload_id
    ):
        # The buffer lost rows it promised to keep: never send a different payload
        # under the same id.
        return _settle(batch, BatchStatus.DEAD, message="The batch's occurrences are gone.")
    budget = budget_for(connection)
    wait = budget.acquire(ROUTE)
    if wait > 0:
        return _settle_retry(batch, jittered_wait(wait), count_attempt=False, message="Rate limit.")
    seen: list[RateLimitInfo] = []
    try:
        client = _client(connection, seen.append)
        client.import_payload(
            batch.project_key,
            batch.environment_key,
            gzip.compress(body, compresslevel=5),
            payload_id=batch.payload_id,
        )
    except errors.RateLimited as exc:
        budget.release(ROUTE, seen[-1] if seen else None, rate_limited=True)
        return _settle_retry(
            batch,
            jittered_wait(exc.retry_after_s),
            count_attempt=False,
            message=str(exc),
            status=429,
        )
    except errors.Unauthorized as exc:
        budget.release(ROUTE, seen[-1] if seen else None)
        return _settle(
            batch, BatchStatus.DEAD, message=CANNOT_IMPORT, http_status=exc.status, rows=rows
        )
    except ReauthorizationRequired as exc:
        budget.release(ROUTE, None)
        return _settle_retry(batch, 60, count_attempt=False, message=str(exc))
    except errors.LaunchDarklyError as exc:
        budget.release(ROUTE, seen[-1] if seen else None)
        if exc.retryable and batch.attempts + 1 < DEAD_AFTER_ATTEMPTS:
            ceiling = settings.IMPORT_BACKOFF_BASE_S * 2**batch.attempts
            delay = random.uniform(0, min(settings.IMPORT_BACKOFF_CAP_S, ceiling))
            return _settle_retry(batch, delay, message=str(exc), status=exc.status)
        prefix = f"Gave up after {batch.attempts + 1} attempts: " if exc.retryable else ""
        return _settle(
            batch, BatchStatus.DEAD, message=prefix + str(exc), http_status=exc.status, rows=rows
        )
    budget.release(ROUTE, seen[-1] if seen else None)
    return _settle(batch, BatchStatus.DELIVERED, http_status=202, rows=rows)


def _settle_retry(
    batch: ImportBatch,
    delay_s: float,
    *,
    message: str,
    count_attempt: bool = True,
    status: int | None = None,
) -> str:
    batch.status = BatchStatus.RETRYING
    batch.next_attempt_at = timezone.now() + timedelta(seconds=max(delay_s, 0.05))
    batch.error_message = message[:2000]
    batch.attempts += 1 if count_attempt else 0
    batch.last_http_status = status
    batch.save(
        update_fields=["status", "next_attempt_at", "error_message", "attempts", "last_http_status"]
    )
    return batch.status


def _settle(
    batch: ImportBatch,
    status: str,
    *,
    message: str = "",
    http_status: int | None = None,
    rows: list[Row] | None = None,
) -> str:
    code = http_status
    now = timezone.now()
    with transaction.atomic():
        batch.status = status
        batch.error_message = message[:2000]
        batch.last_http_status = code
        batch.attempts += 1
        batch.next_attempt_at = None
        batch.delivered_at = now if status == BatchStatus.DELIVERED else None
        if status == BatchStatus.DELIVERED and rows:
            batch.delays = _delays(rows, now)
        batch.save()
        per_key = Counter(key for key, _, _ in rows or [])
        column = "delivered" if status == BatchStatus.DELIVERED else "dead"
        counts_add(
            hour=now.replace(minute=0, second=0, microsecond=0),
            environment_key=batch.environment_key,
            rows={key: {column: count} for key, count in per_key.items()},
        )
    return status


def _delays(rows: list[Row], now: datetime) -> dict[str, list[int]]:
    """Per event key, how many occurrences waited how long (DELAY_BUCKETS_MS)."""
    now_ms = now.timestamp() * 1000
    histograms: dict[str, list[int]] = {}
    # A request's occurrences share their receipt time: one lookup for them all.
    for (key, received_ms), count in Counter((key, at) for key, at, _ in rows).items():
        buckets = histograms.setdefault(key, [0] * (len(DELAY_BUCKETS_MS) + 1))
        # The first bucket whose bound is at least the wait; past the last, the overflow.
        buckets[bisect_left(DELAY_BUCKETS_MS, now_ms - received_ms)] += count
    return histograms


def batch_replay(*, batch: ImportBatch) -> bool:
    """A dead letter back in line, as it was (same contents, same payload id)."""
    return bool(
        ImportBatch.objects.filter(pk=batch.pk, status=BatchStatus.DEAD).update(
            status=BatchStatus.PENDING, next_attempt_at=None, attempts=0, error_message=""
        )
    )


def buffer_trim() -> int:
    """Delete occurrences every environment has in a batch that is settled: what no
    pending, retrying or dead batch and no cursor still needs."""
    cursors = list(ImportCursor.objects.values_list("environment_key", "batched_through_id"))
    environments = set(import_settings().environments or [])
    if not cursors or {env for env, _ in cursors} < environments:
        return 0  # an environment without a cursor yet still needs everything
    unsettled = ImportBatch.objects.filter(
        status__in=(BatchStatus.PENDING, BatchStatus.RETRYING, BatchStatus.DEAD)
    ).aggregate(first=Min("first_id"))["first"]
    safe = min(through for env, through in cursors if env in environments or not environments)
    if unsettled is not None:
        safe = min(safe, unsettled - 1)
    deleted, _ = Occurrence.objects.filter(id__lte=safe).delete()
    return deleted


def delivery_due() -> list[tuple[int, str]]:
    """(workspace, environment) pairs with work for a drain: due batches, or buffered
    occurrences past their cursor. Across workspaces, for the sweeper."""
    now = timezone.now()
    pairs = set(
        ImportBatch.objects.unscoped()
        .filter(status__in=(BatchStatus.PENDING, BatchStatus.RETRYING))
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .values_list("tenant_id", "environment_key")
    )
    newest = dict(
        Occurrence.objects.unscoped()
        .values("tenant_id")
        .annotate(last=Max("id"))
        .values_list("tenant_id", "last")
    )
    for tenant_id, environments in ImportSettings.objects.unscoped().values_list(
        "tenant_id", "environments"
    ):
        if tenant_id not in newest:
            continue
        through = dict(
            ImportCursor.objects.unscoped()
            .filter(tenant_id=tenant_id)
            .values_list("environment_key", "batched_through_id")
        )
        for environment in environments or []:
            if through.get(environment, 0) < newest[tenant_id]:
                pairs.add((tenant_id, environment))
    return sorted(pairs)
