"""Reads for the sync status pages. Each costs a fixed number of queries, whatever
the number of runs or items (the pages must stay fast with 10,000-item runs)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from connector.sync.models import FINISHED_STATUSES, ItemStatus, SyncItem, SyncRun, SyncSettings

HISTORY_DAYS = 30


def last_resync() -> SyncSettings | None:
    """The workspace's sync settings when a resync has run (they keep its summary)."""
    return SyncSettings.objects.filter(last_resync_at__isnull=False).first()


def runs_with_counts(*, limit: int = 20) -> list[SyncRun]:
    """The newest runs, each with `.n_done`, `.n_failed` and `.n_open` (one query)."""
    return list(
        SyncRun.objects.order_by("-started_at", "-id").annotate(
            n_done=Count("items", filter=Q(items__status=ItemStatus.DONE)),
            n_failed=Count(
                "items", filter=Q(items__status__in=(ItemStatus.FAILED, ItemStatus.CONFLICT))
            ),
            n_open=Count("items", filter=~Q(items__status__in=FINISHED_STATUSES)),
        )[:limit]
    )


def current_run() -> SyncRun | None:
    """The run to watch: the oldest unfinished one, else the newest."""
    unfinished = SyncRun.objects.filter(finished_at=None).order_by("started_at").first()
    return unfinished or SyncRun.objects.order_by("-started_at", "-id").first()


ITEM_FILTERS = {
    "failed": (ItemStatus.FAILED,),
    "conflict": (ItemStatus.CONFLICT,),
    "waiting": (ItemStatus.WAITING, ItemStatus.RETRYING, ItemStatus.PAUSED),
    "open": (ItemStatus.PENDING, ItemStatus.QUEUED, ItemStatus.IN_FLIGHT),
    "done": (ItemStatus.DONE,),
}


def run_items(*, run: SyncRun, show: str = "") -> QuerySet[SyncItem]:
    items = SyncItem.objects.filter(run=run).select_related("mapping__source_event")
    if show in ITEM_FILTERS:
        items = items.filter(status__in=ITEM_FILTERS[show])
    return items.order_by("id")


@dataclass(frozen=True)
class Day:
    day: date
    done: int
    failed: int


def daily_history(*, days: int = HISTORY_DAYS) -> list[Day]:
    """Items finished per day over the last `days` days, every day present."""
    today = timezone.now().date()
    start = today - timedelta(days=days - 1)
    rows = (
        SyncItem.objects.filter(finished_at__date__gte=start)
        .annotate(day=TruncDate("finished_at"))
        .values("day")
        .annotate(
            done=Count("pk", filter=Q(status=ItemStatus.DONE)),
            failed=Count("pk", filter=Q(status__in=(ItemStatus.FAILED, ItemStatus.CONFLICT))),
        )
    )
    by_day = {row["day"]: row for row in rows}
    return [
        Day(day=d, done=by_day.get(d, {}).get("done", 0), failed=by_day.get(d, {}).get("failed", 0))
        for d in (start + timedelta(days=i) for i in range(days))
    ]
