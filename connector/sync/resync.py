"""The periodic resync: compare LaunchDarkly with the mappings, per workspace.

It lists the connected project's metrics (50 per page, LaunchDarkly's maximum),
refreshes the RemoteMetric snapshot, and looks at every metric the connector
created or adopted: changed in LaunchDarkly, or deleted there, is drift, repaired
or reported per the workspace's setting; a metric whose event was removed at the
source is an orphan, kept or deleted per setting. A metric the connector did not
create or adopt is never touched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from connector.connections.gate import ConnectionUnusable, Gate, MustWait
from connector.connections.models import LaunchDarklyConnection
from connector.connections.selectors import connection_of_workspace
from connector.launchdarkly import errors
from connector.launchdarkly.client import LaunchDarklyClient, refuse_page_loop
from connector.metrics.desired import MANAGED_TAG, differences, fingerprint, metric_body
from connector.metrics.models import MappingStatus, MetricMapping
from connector.metrics.services import mapping_mark
from connector.sync.models import (
    Action,
    DriftPolicy,
    OrphanPolicy,
    RemoteMetric,
    SyncSettings,
    Trigger,
)
from connector.sync.reconcile import ROUTE_LIST, describe
from connector.sync.selectors import sync_settings
from connector.sync.services import sync_run_create
from tenants.scope import current_tenant


@dataclass
class ResyncReport:
    remote_metrics: int = 0
    changed: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    orphaned: list[str] = field(default_factory=list)
    repair_run: int | None = None
    delete_run: int | None = None
    skipped: str = ""


def resync() -> ResyncReport:
    """Resync the workspace in scope (a no-op when it cannot call LaunchDarkly)."""
    connection = connection_of_workspace()
    if connection is None or not connection.is_usable or not connection.project_key:
        return ResyncReport(skipped="not connected")
    project = connection.project_key
    policy = sync_settings()
    try:
        remote = _remote_metrics(connection, project)
    except MustWait as wait:
        until = datetime.fromtimestamp(wait.until, tz=UTC).strftime("%H:%M:%S UTC")
        return _recorded(
            policy,
            ResyncReport(
                skipped=f"LaunchDarkly's rate limit leaves no room until {until}; "
                "the next resync will try again."
            ),
        )
    except (errors.LaunchDarklyError, ConnectionUnusable) as exc:
        return _recorded(policy, ResyncReport(skipped=f"LaunchDarkly could not be listed: {exc}"))

    report = ResyncReport(remote_metrics=len(remote))
    with transaction.atomic():
        _refresh_snapshot(project, remote)
        repair, orphans_to_delete = [], []
        mappings = (
            MetricMapping.objects.filter(project_key=project, managed=True)
            .exclude(status=MappingStatus.DELETED)
            .select_related("source_event")
        )
        for mapping in mappings:
            current = remote.get(mapping.metric_key)
            if mapping.source_event.is_removed:
                report.orphaned.append(mapping.metric_key)
                mapping_mark(
                    mapping=mapping,
                    status=MappingStatus.ORPHANED,
                    detail="The event was removed at the source.",
                )
                if policy.orphan_policy == OrphanPolicy.DELETE and current is not None:
                    orphans_to_delete.append(mapping)
                continue
            if current is None:
                report.deleted.append(mapping.metric_key)
                detail = "Deleted in LaunchDarkly."
            elif fingerprint(current) != mapping.applied_hash:
                report.changed.append(mapping.metric_key)
                desired = metric_body(mapping, event_key=mapping.source_event.key)
                detail = "Changed in LaunchDarkly: " + describe(differences(desired, current))
            else:
                continue
            if policy.drift_policy == DriftPolicy.REPAIR:
                repair.append(mapping)
                mapping_mark(mapping=mapping, status=MappingStatus.PENDING, detail=detail)
            else:
                mapping_mark(mapping=mapping, status=MappingStatus.DRIFTED, detail=detail)

        # An update reads the metric back and creates it if it is gone.
        run = sync_run_create(
            work=((mapping, Action.UPDATE) for mapping in repair), trigger=Trigger.RESYNC
        )
        report.repair_run = run.pk if run else None
        run = sync_run_create(
            work=((mapping, Action.DELETE) for mapping in orphans_to_delete),
            trigger=Trigger.RESYNC,
        )
        report.delete_run = run.pk if run else None
        return _recorded(policy, report)


def _recorded(policy: SyncSettings, report: ResyncReport) -> ResyncReport:
    """Keep what the resync found, or why it could not look, for the status page."""
    policy.last_resync_at = timezone.now()
    policy.last_resync_summary = {
        k: (len(v) if isinstance(v, list) else v) for k, v in asdict(report).items()
    }
    policy.save(update_fields=["last_resync_at", "last_resync_summary"])
    return report


def _remote_metrics(connection: LaunchDarklyConnection, project: str) -> dict[str, dict]:
    """Every metric of the project, one page per call through the account's shared
    rate budget (a big project's listing must not spend what running syncs need)."""
    gate = Gate(connection=connection)
    remote: dict[str, dict] = {}
    next_href: str | None = None
    seen: set[str] = set()
    while True:
        page, next_href = gate.call(ROUTE_LIST, _metrics_page(project, next_href))
        remote.update((metric["key"], metric) for metric in page)
        if next_href is None:
            return remote
        refuse_page_loop(next_href, seen)


def _metrics_page(project: str, href: str | None) -> Callable[[LaunchDarklyClient], Any]:
    return lambda client: client.list_metrics_page(project, next_href=href)


def _refresh_snapshot(project: str, remote: dict[str, dict]) -> None:
    RemoteMetric.objects.filter(project_key=project).exclude(key__in=list(remote)).delete()
    known = {r.key: r for r in RemoteMetric.objects.filter(project_key=project)}
    now = timezone.now()
    new: list[RemoteMetric] = []
    changed: list[RemoteMetric] = []
    for key, metric in remote.items():
        row = known.get(key) or RemoteMetric(tenant=current_tenant(), project_key=project, key=key)
        row.fingerprint = fingerprint(metric)
        row.version = metric.get("_version")
        row.managed_tag = MANAGED_TAG in (metric.get("tags") or [])
        row.seen_at = now
        (changed if row.pk else new).append(row)
    RemoteMetric.objects.bulk_create(new, batch_size=500)
    RemoteMetric.objects.bulk_update(
        changed, ["fingerprint", "version", "managed_tag", "seen_at"], batch_size=500
    )
