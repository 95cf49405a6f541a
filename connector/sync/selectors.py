"""Reads for the sync status pages. Each costs a fixed number of queries, whatever
the number of runs or items (the pages must stay fast with 10,000-item runs)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.db.models import Count, Min, Q, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from connector.celery import app as celery_app
from connector.connections.models import LaunchDarklyConnection, Status
from connector.connections.services import budget_for
from connector.metrics.models import MetricGroup
from connector.sync.models import (
    FINISHED_STATUSES,
    Action,
    ItemStatus,
    SyncItem,
    SyncRun,
    SyncSettings,
)
from tenants.models import Tenant

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
    items = SyncItem.objects.filter(run=run).select_related("mapping__source_event", "group")
    if show in ITEM_FILTERS:
        items = items.filter(status__in=ITEM_FILTERS[show])
    return items.order_by("id")


# The status page lists the workspace's metric groups; a workspace has few, and the
# page says when there are more than this.
GROUPS_SHOWN = 100


def metric_groups(*, limit: int = GROUPS_SHOWN) -> tuple[list[MetricGroup], int]:
    """The workspace's metric groups by key, at most `limit`, and how many there are."""
    groups = MetricGroup.objects.order_by("project_key", "key")
    return list(groups[:limit]), groups.count()


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
    by_day = {row["day"]: (row["done"], row["failed"]) for row in rows}
    return [
        Day(day=d, done=by_day.get(d, (0, 0))[0], failed=by_day.get(d, (0, 0))[1])
        for d in (start + timedelta(days=i) for i in range(days))
    ]


@dataclass(frozen=True)
class Progress:
    counts: dict[str, int]
    total: int
    waiting_until: datetime | None
    items_per_s: float | None
    eta_s: float | None
    # Done items that deleted their metric: those are no longer in LaunchDarkly.
    deleted: int = 0
    # Items of metric groups (the rest are metrics), and those of them done.
    groups: int = 0
    groups_done: int = 0

    @property
    def finished(self) -> int:
        return sum(self.counts.get(s, 0) for s in FINISHED_STATUSES)

    @property
    def percent(self) -> int:
        return int(100 * self.finished / self.total) if self.total else 100

    @property
    def done(self) -> int:
        return self.counts.get(ItemStatus.DONE, 0)

    @property
    def failed(self) -> int:
        """What a person may retry: failures and conflicts."""
        return self.counts.get(ItemStatus.FAILED, 0) + self.counts.get(ItemStatus.CONFLICT, 0)

    @property
    def in_launchdarkly(self) -> int:
        """Done items whose metric is in LaunchDarkly now (created, updated, adopted)."""
        return self.done - self.deleted

    @property
    def metrics_done(self) -> int:
        return self.done - self.groups_done

    @property
    def cancelled(self) -> int:
        return self.counts.get(ItemStatus.CANCELLED, 0)


RATE_WINDOW = timedelta(seconds=60)


def run_progress(*, run: SyncRun) -> Progress:
    """The run's counts by status at this moment and an estimate of the time left from
    the rate observed over the last minute. Two queries, whatever the run's size."""
    now = timezone.now()
    recent_since = max(run.started_at, now - RATE_WINDOW)
    stats = SyncItem.objects.filter(run=run).aggregate(
        recent=Count("pk", filter=Q(finished_at__gte=recent_since)),
        deleted=Count("pk", filter=Q(status=ItemStatus.DONE, action=Action.DELETE)),
        groups=Count("pk", filter=Q(group__isnull=False)),
        groups_done=Count("pk", filter=Q(group__isnull=False, status=ItemStatus.DONE)),
        waiting_until=Min(
            "next_attempt_at",
            filter=Q(
                status__in=(ItemStatus.WAITING, ItemStatus.IN_FLIGHT), next_attempt_at__gt=now
            ),
        ),
    )
    counts = dict(SyncItem.objects.filter(run=run).values_list("status").annotate(n=Count("pk")))
    total = sum(counts.values())
    remaining = total - sum(counts.get(s, 0) for s in FINISHED_STATUSES)
    elapsed = (now - recent_since).total_seconds()
    rate = stats["recent"] / elapsed if elapsed >= 1 and stats["recent"] else None
    eta = remaining / rate if rate and remaining else (0.0 if not remaining else None)
    return Progress(
        counts=counts,
        total=total,
        waiting_until=stats["waiting_until"],
        items_per_s=rate,
        eta_s=eta,
        deleted=stats["deleted"],
        groups=stats["groups"],
        groups_done=stats["groups_done"],
    )


def sync_settings() -> SyncSettings:
    """The workspace's sync settings, with the defaults until someone changes them."""
    return SyncSettings.objects.get_or_create()[0]


# --- the operators' overview ----------------------------------------------------------
# Every workspace's sync health on one page (staff only). It crosses workspaces by
# design, so every query below says `.unscoped()`.

OPS_FAILED = (ItemStatus.FAILED, ItemStatus.CONFLICT)


@dataclass(frozen=True)
class Overview:
    failing: list[dict]
    needs_reauth: list[LaunchDarklyConnection]
    rate_limited: list[tuple[LaunchDarklyConnection, datetime]]
    open_items: int
    oldest_open_since: datetime | None
    broker_queue_depth: int | None


def broker_queue_depth() -> int | None:
    """Messages waiting in the default Celery queue, if the broker can say."""
    try:
        with celery_app.connection_for_read() as conn:
            declared = conn.default_channel.queue_declare(
                queue=celery_app.conf.task_default_queue, passive=True
            )
            return declared.message_count
    except Exception:  # an overview must render even when the broker cannot answer
        return None


def overview() -> Overview:
    now = timezone.now().timestamp()
    failing = list(
        SyncRun.objects.unscoped()
        .filter(items__status__in=OPS_FAILED)
        .values("tenant_id")
        .annotate(
            failed=Count("items", filter=Q(items__status__in=OPS_FAILED)),
            runs=Count("id", distinct=True),
        )
        .order_by("-failed")[:100]
    )
    tenants = Tenant.objects.in_bulk([row["tenant_id"] for row in failing])
    for row in failing:
        row["tenant"] = tenants[row["tenant_id"]]
    connections = LaunchDarklyConnection.objects.unscoped().select_related("tenant")
    limited = []
    for connection in connections.filter(status=Status.ACTIVE):
        until = budget_for(connection).limited_until(now=now)
        if until:
            limited.append((connection, datetime.fromtimestamp(until, tz=UTC)))
    open_items = SyncItem.objects.unscoped().exclude(status__in=FINISHED_STATUSES)
    stats = open_items.aggregate(n=Count("pk"), oldest=Min("run__started_at"))
    return Overview(
        failing=failing,
        needs_reauth=list(connections.filter(status=Status.NEEDS_REAUTH)),
        rate_limited=limited,
        open_items=stats["n"],
        oldest_open_since=stats["oldest"],
        broker_queue_depth=broker_queue_depth(),
    )
