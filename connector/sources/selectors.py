"""Reads of the event catalog of the workspace in scope."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Q, QuerySet
from django.utils import timezone

from connector.sources.models import SourceEvent

ORDERINGS = {
    "key": ("key",),
    "-key": ("-key",),
    "name": ("name", "key"),
    "-last_seen": ("-last_seen", "key"),
    "last_seen": ("last_seen", "key"),
    "-volume": ("-volume", "key"),
    "volume": ("volume", "key"),
}


@dataclass(frozen=True)
class EventFilter:
    """What a person (or an API client) asked to see. Every field is optional."""

    q: str = ""
    value_kind: str = ""
    seen_within_days: int | None = None
    removed: bool | None = False  # None: both; False: still at the source; True: removed
    order: str = "key"


def events_matching(filter: EventFilter) -> QuerySet[SourceEvent]:
    events = SourceEvent.objects.all()
    if filter.q:
        events = events.filter(
            Q(key__icontains=filter.q)
            | Q(name__icontains=filter.q)
            | Q(description__icontains=filter.q)
        )
    if filter.value_kind:
        events = events.filter(value_kind=filter.value_kind)
    if filter.seen_within_days is not None:
        since = timezone.now() - timedelta(days=filter.seen_within_days)
        events = events.filter(last_seen__gte=since)
    if filter.removed is not None:
        events = events.filter(removed_at__isnull=not filter.removed)
    return events.order_by(*ORDERINGS.get(filter.order, ORDERINGS["key"]))
