"""The operators' overview: every workspace's sync health on one page (staff only).
It crosses workspaces by design, so every query here says `.unscoped()`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from django.db.models import Count, Min, Q
from django.utils import timezone

from connector.celery import app as celery_app
from connector.connections.models import LaunchDarklyConnection, Status
from connector.sync.gate import budget_for
from connector.sync.models import FINISHED_STATUSES, ItemStatus, SyncItem, SyncRun
from tenants.models import Tenant

FAILED = (ItemStatus.FAILED, ItemStatus.CONFLICT)


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
        .filter(items__status__in=FAILED)
        .values("tenant_id")
        .annotate(
            failed=Count("items", filter=Q(items__status__in=FAILED)),
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
