"""What /metrics answers: the shared totals as Prometheus families, and the sync
queue's gauges computed from the database at scrape time. It reads the sync engine's
models, so it sits above it; recording (connector.observability.prometheus) does not."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import datetime, timedelta

from django.db.models import Count, F, Min, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from connector.imports import selectors as import_selectors
from connector.imports.models import BatchStatus, ImportBatch, ImportCount, ImportSettings
from connector.observability import totals
from connector.observability.prometheus import (
    HISTOGRAMS,
    LD_DURATION,
    LD_REQUESTS,
    OLDEST_PENDING_AGE,
    QUEUE_DEPTH,
    RATE_LIMIT_WAIT,
    SYNC_ITEMS,
)
from connector.observability.totals import series
from connector.sync.models import ACTIVE_STATUSES, READY_STATUSES, ItemStatus, SyncItem
from tenants.scope import tenant_scope


class ConnectorCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        recorded = totals.read()
        yield _counter(
            LD_REQUESTS,
            "LaunchDarkly HTTP calls, by method, route template and status",
            ("method", "route", "status"),
            recorded.get(LD_REQUESTS, {}),
        )
        yield _histogram(
            LD_DURATION,
            "Duration of LaunchDarkly HTTP calls",
            ("method", "route"),
            recorded,
        )
        yield _histogram(
            RATE_LIMIT_WAIT,
            "Waits for LaunchDarkly's rate limit: inline (slept) or deferred (rescheduled)",
            ("mode",),
            recorded,
        )
        yield _counter(
            SYNC_ITEMS,
            "Sync item attempts recorded, by the status they ended in",
            ("outcome",),
            recorded.get(SYNC_ITEMS, {}),
        )
        yield from _queue_gauges()
        yield from _import_families()


def _counter(name, documentation, labels, values) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=labels)
    for encoded, amount in sorted(values.items()):
        decoded = json.loads(encoded)
        family.add_metric([decoded.get(label, "") for label in labels], amount)
    return family


def _histogram(name, documentation, labels, recorded) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, documentation, labels=labels)
    sums = recorded.get(f"{name}_sum", {})
    bucket_counts: dict[str, dict[str, float]] = {}
    for encoded, count in recorded.get(f"{name}_bucket", {}).items():
        decoded = json.loads(encoded)
        le = decoded.pop("le")
        bucket_counts.setdefault(series(**decoded), {})[le] = count
    for encoded, total in sorted(sums.items()):
        decoded = json.loads(encoded)
        counts = bucket_counts.get(encoded, {})
        cumulative, buckets = 0.0, []
        for bound in (*HISTOGRAMS[name], math.inf):
            le = "+Inf" if bound == math.inf else str(bound)
            cumulative += counts.get(le, 0.0)
            buckets.append((le, cumulative))
        family.add_metric([decoded.get(label, "") for label in labels], buckets, total)
    return family


def _queue_gauges() -> Iterator[Metric]:
    """Items not yet finished, per workspace and status, and per workspace the age of
    the oldest one that is due (since its retry time, else its run's start). Crosses
    workspaces on purpose (`unscoped`): an operator's view of every queue."""
    depth = GaugeMetricFamily(
        QUEUE_DEPTH,
        "Sync items not finished, by workspace and status (queued and in_flight are in "
        "the task queue or a worker)",
        labels=("workspace", "status"),
    )
    unfinished = (*READY_STATUSES, *ACTIVE_STATUSES, ItemStatus.PAUSED)
    rows = (
        SyncItem.objects.unscoped()
        .filter(status__in=unfinished)
        .values("tenant__slug", "status")
        .annotate(items=Count("pk"))
        .order_by("tenant__slug", "status")
    )
    for row in rows:
        depth.add_metric([row["tenant__slug"], row["status"]], row["items"])
    yield depth

    now = timezone.now()
    age = GaugeMetricFamily(
        OLDEST_PENDING_AGE,
        "Seconds since the oldest due, unfinished sync item of the workspace became due",
        labels=("workspace",),
    )
    due = (
        SyncItem.objects.unscoped()
        .filter(status__in=(*READY_STATUSES, *ACTIVE_STATUSES))
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .values("tenant__slug")
        .annotate(since=Min(Coalesce(F("next_attempt_at"), F("run__started_at"))))
        .order_by("tenant__slug")
    )
    for row in due:
        since: datetime = row["since"]
        age.add_metric([row["tenant__slug"]], max((now - since).total_seconds(), 0.0))
    yield age


IMPORT_OCCURRENCES = "connector_import_occurrences"
IMPORT_PENDING = "connector_import_pending"
IMPORT_DEAD_BATCHES = "connector_import_dead_batches"
IMPORT_DELAY = "connector_import_delivery_delay_seconds"
IMPORT_STOPPED = "connector_import_stopped_events"


def _import_families() -> Iterator[Metric]:
    """The event import's figures, as its status page shows them: counts since the
    start (monotonic: the hourly counts are never deleted), what is pending and dead
    per environment, and the delay to delivery over the last hour (an upper bound, the
    bucket's), per workspace."""
    occurrences = CounterMetricFamily(
        IMPORT_OCCURRENCES,
        "Occurrences by workspace, environment (empty for what is counted once) and "
        "outcome: received, refused, not_mapped, delivered, dead",
        labels=("workspace", "environment", "outcome"),
    )
    sums = (
        ImportCount.objects.unscoped()
        .values("tenant__slug", "environment_key")
        .annotate(
            **{
                name: Sum(name)
                for name in ("received", "refused", "not_mapped", "delivered", "dead")
            }
        )
        .order_by("tenant__slug", "environment_key")
    )
    for row in sums:
        counted = (
            ("delivered", "dead")
            if row["environment_key"]
            else (
                "received",
                "refused",
                "not_mapped",
            )
        )
        for outcome in counted:
            occurrences.add_metric(
                [row["tenant__slug"], row["environment_key"], outcome], row[outcome] or 0
            )
    yield occurrences

    pending = GaugeMetricFamily(
        IMPORT_PENDING,
        "Accepted occurrences not yet delivered",
        labels=("workspace", "environment"),
    )
    dead = GaugeMetricFamily(
        IMPORT_DEAD_BATCHES, "Dead-letter batches", labels=("workspace", "environment")
    )
    delay = GaugeMetricFamily(
        IMPORT_DELAY,
        "Receipt-to-delivery delay over the last hour, by quantile (bucket upper bound)",
        labels=("workspace", "environment", "quantile"),
    )
    stopped = GaugeMetricFamily(
        IMPORT_STOPPED,
        "Events that arrived during the last week but not in the last hours",
        labels=("workspace",),
    )
    for settings_row in ImportSettings.objects.unscoped().select_related("tenant"):
        tenant = settings_row.tenant
        with tenant_scope(tenant):
            figures = import_selectors.import_figures(window=timedelta(hours=1))
            dead_by_env = dict(
                ImportBatch.objects.filter(status=BatchStatus.DEAD)
                .values("environment_key")
                .annotate(n=Count("pk"))
                .values_list("environment_key", "n")
            )
            stopped.add_metric([tenant.slug], len(import_selectors.stopped_events()))
        for environment, env_figures in figures.by_environment.items():
            labels = [tenant.slug, environment]
            pending.add_metric(labels, env_figures.pending)
            dead.add_metric(labels, dead_by_env.get(environment, 0))
            for quantile, value in (("0.5", env_figures.p50_ms), ("0.99", env_figures.p99_ms)):
                if value is not None:
                    delay.add_metric([*labels, quantile], value / 1000)
    yield from (pending, dead, delay, stopped)


def exposition() -> tuple[bytes, str]:
    """The scrape's body and content type. A registry of our own: the default one
    would add this web process's own process and GC metrics, which say nothing of the
    workers."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ConnectorCollector())
    return generate_latest(registry), CONTENT_TYPE_LATEST
