"""What the event import pages and the Prometheus endpoint read."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Count, Max, Sum
from django.utils import timezone

from connector.connections.models import LaunchDarklyConnection
from connector.connections.services import client_for
from connector.imports.delivery import DELAY_BUCKETS_MS
from connector.imports.ingest import import_settings, project_context_kinds
from connector.imports.models import BatchStatus, ImportBatch, ImportCount, ImportCursor, Occurrence
from connector.sources.models import SourceEvent, ValueKind

log = logging.getLogger(__name__)

WINDOW = timedelta(hours=24)
# The settings page lists this many numeric events for their value property; the
# others are set through the catalog API or an upload (the page says so).
VALUE_EVENTS_SHOWN = 200
# An event that arrived in the week before but not in this long has "stopped".
STOPPED_AFTER = timedelta(hours=6)


def quantile_ms(buckets: list[int], q: float) -> int | None:
    """The bucket bound under which a share q of the delays fall (None: no delays)."""
    total = sum(buckets)
    if not total:
        return None
    seen = 0
    for index, count in enumerate(buckets):
        seen += count
        if seen >= q * total:
            return DELAY_BUCKETS_MS[index] if index < len(DELAY_BUCKETS_MS) else None
    return None


def _merge(into: list[int], more: list[int]) -> list[int]:
    if not into:
        return list(more)
    return [a + b for a, b in zip(into, more, strict=False)]


@dataclass
class Figures:
    """Counts of one environment or one event key over the window."""

    received: int = 0
    refused: int = 0
    not_mapped: int = 0
    pending: int = 0
    delivered: int = 0
    dead: int = 0
    delays: list[int] = field(default_factory=list)

    @property
    def p50_ms(self) -> int | None:
        return quantile_ms(self.delays, 0.5)

    @property
    def p99_ms(self) -> int | None:
        return quantile_ms(self.delays, 0.99)


@dataclass
class ImportFigures:
    since: datetime
    total: Figures
    by_environment: dict[str, Figures]
    by_event: dict[str, Figures]
    hours: list[tuple[datetime, Figures]]


def import_figures(window: timedelta = WINDOW) -> ImportFigures:
    since = timezone.now() - window
    total = Figures()
    by_environment: dict[str, Figures] = {}
    by_event: dict[str, Figures] = {}
    hours: dict[datetime, Figures] = {}
    rows = (
        ImportCount.objects.filter(hour__gte=since.replace(minute=0, second=0, microsecond=0))
        .values("hour", "environment_key", "event_key")
        .annotate(
            received_=Sum("received"),
            refused_=Sum("refused"),
            not_mapped_=Sum("not_mapped"),
            delivered_=Sum("delivered"),
            dead_=Sum("dead"),
        )
    )
    for row in rows:
        hour = hours.setdefault(row["hour"], Figures())
        event = by_event.setdefault(row["event_key"], Figures())
        if row["environment_key"]:
            env = by_environment.setdefault(row["environment_key"], Figures())
            for target in (env, event, hour, total):
                target.delivered += row["delivered_"]
                target.dead += row["dead_"]
        else:
            for target in (event, hour, total):
                target.received += row["received_"]
                target.refused += row["refused_"]
                target.not_mapped += row["not_mapped_"]
    for environment in import_settings().environments or []:
        by_environment.setdefault(environment, Figures())
    _pending(by_environment, by_event, total)
    for batch in ImportBatch.objects.filter(
        status=BatchStatus.DELIVERED, delivered_at__gte=since
    ).only("environment_key", "delivered_at", "delays"):
        assert batch.delivered_at is not None  # delivered batches have it
        hour_at = batch.delivered_at.replace(minute=0, second=0, microsecond=0)
        hour = hours.setdefault(hour_at, Figures())
        env = by_environment.setdefault(batch.environment_key, Figures())
        for key, buckets in (batch.delays or {}).items():
            event = by_event.setdefault(key, Figures())
            for target in (event, env, hour, total):
                target.delays = _merge(target.delays, buckets)
    return ImportFigures(
        since=since,
        total=total,
        by_environment=dict(sorted(by_environment.items())),
        by_event=dict(sorted(by_event.items())),
        hours=sorted(hours.items()),
    )


def _pending(by_environment: dict[str, Figures], by_event: dict[str, Figures], total: Figures):
    """Accepted but not yet delivered: past each environment's cursor, or in a batch
    that is waiting or retrying."""
    cursors = dict(ImportCursor.objects.values_list("environment_key", "batched_through_id"))
    for environment, figures in by_environment.items():
        through = cursors.get(environment, 0)
        waiting = (
            Occurrence.objects.filter(id__gt=through)
            .values("event_key")
            .annotate(n=Count("id"))
            .values_list("event_key", "n")
        )
        for key, n in waiting:
            figures.pending += n
            by_event.setdefault(key, Figures()).pending += n
            total.pending += n
        batched = ImportBatch.objects.filter(
            environment_key=environment, status__in=(BatchStatus.PENDING, BatchStatus.RETRYING)
        ).aggregate(n=Sum("count"))["n"]
        figures.pending += batched or 0
        total.pending += batched or 0


def dead_batches(limit: int = 50) -> list[ImportBatch]:
    return list(ImportBatch.objects.filter(status=BatchStatus.DEAD).order_by("-id")[:limit])


def stopped_events() -> list[tuple[str, datetime]]:
    """Events that arrived during the last week but not for STOPPED_AFTER: a metric
    that stops receiving data is worth a look before an experiment reads it."""
    now = timezone.now()
    last = (
        ImportCount.objects.filter(environment_key="", hour__gte=now - timedelta(days=7))
        .exclude(received=0)
        .values("event_key")
        .annotate(last=Max("hour"))
        .values_list("event_key", "last")
    )
    cutoff = now - STOPPED_AFTER
    return sorted((key, at) for key, at in last if key and at + timedelta(hours=1) < cutoff)


def project_choices(
    connection: LaunchDarklyConnection | None,
) -> tuple[list[str], list[str], str]:
    """The connected project's environments and context kinds, for the settings form,
    and a note when LaunchDarkly cannot be asked (the form then keeps what it has)."""
    if connection is None or not connection.is_usable or not connection.project_key:
        return [], [], "Connect LaunchDarkly and choose a project first."
    try:
        environments = [
            str(env["key"])
            for env in client_for(connection).list_environments(connection.project_key)
        ]
    except Exception:
        log.warning("listing environments for the import settings failed")
        return (
            [],
            sorted(project_context_kinds(connection) or []),
            ("LaunchDarkly's environments could not be read just now. Reload to try again."),
        )
    return environments, sorted(project_context_kinds(connection) or []), ""


def numeric_events(limit: int = VALUE_EVENTS_SHOWN) -> tuple[list[SourceEvent], int]:
    """The first numeric events of the catalog by key, and how many there are. Removed
    ones are left out: their occurrences are refused whatever their value."""
    events = SourceEvent.objects.filter(value_kind=ValueKind.NUMERIC, removed_at__isnull=True)
    shown = list(events.order_by("key")[:limit])
    return shown, len(shown) if len(shown) < limit else events.count()
