"""The RemoteMetric snapshot: what LaunchDarkly last said about a metric, filled the
same way by the resync (every metric of the project) and by a plan's review (the
metrics on the plan's events, read live)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any, cast

from django.utils import timezone

from connector.connections.models import LaunchDarklyConnection
from connector.connections.services import client_for
from connector.launchdarkly import errors
from connector.metrics.desired import MANAGED_TAG, fingerprint
from connector.sync.models import RemoteMetric
from connector.sync.reconcile import EXPAND_USE, active_use
from tenants.scope import current_tenant

log = logging.getLogger(__name__)

SNAPSHOT_FIELDS = (
    "fingerprint",
    "version",
    "managed_tag",
    "name",
    "event_key",
    "archived",
    "maintainer_id",
    "experiment_count",
    "active_use",
    "seen_at",
)


def snapshot_fill(row: RemoteMetric, metric: dict[str, Any], now: datetime) -> None:
    row.fingerprint = fingerprint(metric)
    row.version = metric.get("_version")
    row.managed_tag = MANAGED_TAG in (metric.get("tags") or [])
    row.name = str(metric.get("name") or "")[:200]
    row.event_key = str(metric.get("eventKey") or "")[:200]
    row.archived = bool(metric.get("archived"))
    row.maintainer_id = str(metric.get("maintainerId") or "")[:64]
    count = metric.get("experimentCount")
    row.experiment_count = count if isinstance(count, int) else None
    row.active_use = active_use(metric)
    row.seen_at = now


def snapshot_upsert(project: str, metrics: dict[str, dict[str, Any]]) -> None:
    """Store what LaunchDarkly said about these metrics (key -> its representation)."""
    now = timezone.now()
    known = {r.key: r for r in RemoteMetric.objects.filter(project_key=project, key__in=metrics)}
    new: list[RemoteMetric] = []
    changed: list[RemoteMetric] = []
    for key, metric in metrics.items():
        row = known.get(key) or RemoteMetric(tenant=current_tenant(), project_key=project, key=key)
        snapshot_fill(row, metric, now)
        (changed if row.pk else new).append(row)
    RemoteMetric.objects.bulk_create(new, batch_size=500, ignore_conflicts=True)
    RemoteMetric.objects.bulk_update(changed, SNAPSHOT_FIELDS, batch_size=500)


# Event keys per getMetrics call: each goes into the URL's filter.
EVENT_KEYS_PER_CALL = 25
# The filter's grammar has no escapes: a key with these cannot be asked for (the
# resync's full listing still finds its metrics).
_UNFILTERABLE = set('",[]')


def remote_refresh_for_events(
    *, connection: LaunchDarklyConnection, event_keys: Iterable[str]
) -> str:
    """Ask LaunchDarkly for the metrics on these events (getMetrics filtered on
    eventKeys, with their use) and update the snapshot with them, so a plan sees hand-
    made metrics, archived ones and use as they are now, not as the last resync saw
    them. Returns "" or, when LaunchDarkly could not be asked, a note for the page."""
    project = connection.project_key
    wanted = sorted({key for key in event_keys if key and not (set(key) & _UNFILTERABLE)})
    client = client_for(connection)
    found: dict[str, dict[str, Any]] = {}
    try:
        for start in range(0, len(wanted), EVENT_KEYS_PER_CALL):
            chunk = wanted[start : start + EVENT_KEYS_PER_CALL]
            event_filter = "eventKeys anyOf [" + ",".join(json.dumps(k) for k in chunk) + "]"
            listed = client.list_metrics(project, filter=event_filter, expand=EXPAND_USE)
            found.update((m["key"], cast(dict[str, Any], m)) for m in listed)
    except errors.LaunchDarklyError as exc:
        log.warning("reading metrics for a plan failed: %s", exc)
        return (
            "LaunchDarkly could not be asked about these events just now, so this plan "
            "shows what the last resync saw. Reload the page to try again."
        )
    snapshot_upsert(project, found)
    return ""
