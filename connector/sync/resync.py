"""The periodic resync: compare LaunchDarkly with the mappings, per workspace.

It lists the connected project's metrics (50 per page, LaunchDarkly's maximum),
refreshes the RemoteMetric snapshot, and looks at every metric the connector
created or adopted: changed in LaunchDarkly, or deleted there, is drift, repaired
or reported per the workspace's setting; a metric whose event was removed at the
source is an orphan, archived (LaunchDarkly's advice, and the default), kept, or
deleted where LaunchDarkly allows; its event's return restores it. A metric archived
in LaunchDarkly by a person is not "deleted there" and is left archived. A metric the
connector did not create or adopt is never touched.

Metric groups (LaunchDarkly's beta API) are listed too, and the connector's are
compared the same way: changed or deleted there is drift, repaired or reported. Their
listing is separate: when LaunchDarkly will not list them (an account without the beta
API answers 403), the metrics are still resynced and the report says why the groups
were not.
"""

from __future__ import annotations

import logging
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
from connector.metrics.desired import differences, fingerprint, metric_body
from connector.metrics.models import MappingStatus, MetricGroup, MetricMapping
from connector.metrics.services import group_mark, mapping_mark
from connector.sync.models import (
    Action,
    DriftPolicy,
    OrphanPolicy,
    RemoteMetric,
    SyncSettings,
    Trigger,
)
from connector.sync.reconcile import EXPAND_USE, ROUTE_LIST, describe, use_phrase
from connector.sync.reconcile_groups import ROUTE_GROUP_LIST, group_drift
from connector.sync.remote import snapshot_upsert
from connector.sync.selectors import sync_settings
from connector.sync.services import Target, sync_run_create

log = logging.getLogger(__name__)


@dataclass
class ResyncReport:
    remote_metrics: int = 0
    changed: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    orphaned: list[str] = field(default_factory=list)
    archived: list[str] = field(default_factory=list)  # by a person, in LaunchDarkly
    restored: list[str] = field(default_factory=list)  # their event came back
    repair_run: int | None = None
    delete_run: int | None = None
    skipped: str = ""
    # Metric groups: how many the project has, and of the connector's, the keys of
    # those changed or deleted in LaunchDarkly. `groups_skipped` says why they were not
    # looked at (the metrics were).
    remote_groups: int = 0
    groups_changed: list[str] = field(default_factory=list)
    groups_deleted: list[str] = field(default_factory=list)
    groups_skipped: str = ""


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
    remote_groups = _remote_groups_or_skip(connection, project, report)
    with transaction.atomic():
        _refresh_snapshot(project, remote)
        work: list[tuple[Target, str]] = []
        retire = Action.DELETE if policy.orphan_policy == OrphanPolicy.DELETE else Action.ARCHIVE
        mappings = (
            MetricMapping.objects.filter(project_key=project, managed=True)
            .exclude(status=MappingStatus.DELETED)
            .select_related("source_event")
        )
        for mapping in mappings:
            current = remote.get(mapping.metric_key)
            if mapping.source_event.is_removed:
                report.orphaned.append(mapping.metric_key)
                if current is not None and current.get("archived"):
                    continue  # archived already: nothing more to ask of LaunchDarkly
                detail = "The event was removed at the source."
                if policy.orphan_policy != OrphanPolicy.KEEP and current is not None:
                    if in_use := use_phrase(current):
                        detail += f" In use by {in_use}, so it is archived once no longer used."
                    else:
                        work.append((mapping, retire))
                mapping_mark(mapping=mapping, status=MappingStatus.ORPHANED, detail=detail)
                continue
            if current is None:
                report.deleted.append(mapping.metric_key)
                detail = "Deleted in LaunchDarkly."
            elif current.get("archived"):
                if mapping.status == MappingStatus.ORPHANED:
                    # The connector archived it when its event went away; the event is
                    # back, so the metric is restored.
                    report.restored.append(mapping.metric_key)
                    work.append((mapping, Action.RESTORE))
                    mapping_mark(
                        mapping=mapping,
                        status=MappingStatus.PENDING,
                        detail="The event is back at the source: restoring the metric.",
                    )
                elif mapping.status != MappingStatus.ARCHIVED:
                    # A person archived it: not drift, and not the connector's to undo.
                    report.archived.append(mapping.metric_key)
                    mapping_mark(
                        mapping=mapping,
                        status=MappingStatus.ARCHIVED,
                        detail="Archived in LaunchDarkly; the connector leaves it archived. "
                        "Plan the event again to restore it.",
                    )
                continue
            elif drift := _drift(mapping, current):
                report.changed.append(mapping.metric_key)
                detail = "Changed in LaunchDarkly: " + drift
            else:
                if mapping.status in (MappingStatus.ARCHIVED, MappingStatus.ORPHANED):
                    # Un-archived in LaunchDarkly, or the event came back unarchived.
                    mapping_mark(mapping=mapping, status=MappingStatus.SYNCED, detail="")
                continue
            if policy.drift_policy == DriftPolicy.REPAIR:
                work.append((mapping, Action.UPDATE))
                mapping_mark(mapping=mapping, status=MappingStatus.PENDING, detail=detail)
            else:
                mapping_mark(mapping=mapping, status=MappingStatus.DRIFTED, detail=detail)

        if remote_groups is not None:
            work += _group_drift(project, remote_groups, policy, report)

        # An update reads the metric (or group) back and creates it if it is gone. One
        # run for repairs and restores, one for retiring orphans, so each shows on its
        # own. Groups come last in theirs: a group waits for its metrics anyway.
        changes = [(m, a) for m, a in work if a in (Action.UPDATE, Action.RESTORE)]
        run = sync_run_create(work=changes, trigger=Trigger.RESYNC)
        report.repair_run = run.pk if run else None
        retired = [(m, a) for m, a in work if a in (Action.ARCHIVE, Action.DELETE)]
        run = sync_run_create(work=retired, trigger=Trigger.RESYNC)
        report.delete_run = run.pk if run else None
        return _recorded(policy, report)


def _drift(mapping: MetricMapping, current: dict[str, Any]) -> str:
    """What LaunchDarkly holds that differs from what was applied, or ""."""
    problems = []
    if fingerprint(current) != mapping.applied_hash:
        desired = metric_body(mapping, event_key=mapping.source_event.key)
        problems.append(describe(differences(desired, current)))
    wanted = mapping.maintainer_id
    if wanted and current.get("maintainerId") != wanted:
        have = current.get("maintainerId") or "nobody"
        problems.append(f"maintainer: we want {wanted}, LaunchDarkly has {have}")
    return "; ".join(p for p in problems if p)


def _remote_groups_or_skip(
    connection: LaunchDarklyConnection, project: str, report: ResyncReport
) -> dict[str, dict] | None:
    """The project's metric groups, or None (with `report.groups_skipped` saying why)
    when LaunchDarkly would not list them: the metrics' resync goes on either way."""
    try:
        groups = _remote_groups(connection, project)
    except MustWait as wait:
        until = datetime.fromtimestamp(wait.until, tz=UTC).strftime("%H:%M:%S UTC")
        report.groups_skipped = (
            f"LaunchDarkly's rate limit leaves no room until {until}; "
            "the next resync will look at the metric groups."
        )
    except errors.Forbidden as exc:
        # LaunchDarkly: a beta route answers 403 to an account (or a token's role)
        # that may not use it.
        log.warning("resync: LaunchDarkly refused to list metric groups (beta API): %s", exc)
        report.groups_skipped = (
            "LaunchDarkly refused to list metric groups (a beta API; the account or the "
            f"token's role may not have it): {exc.message}"
        )
    except (errors.LaunchDarklyError, ConnectionUnusable) as exc:
        log.warning("resync: metric groups could not be listed: %s", exc)
        report.groups_skipped = f"LaunchDarkly's metric groups could not be listed: {exc}"
    else:
        report.remote_groups = len(groups)
        return groups
    return None


def _group_drift(
    project: str, remote: dict[str, dict], policy: SyncSettings, report: ResyncReport
) -> list[tuple[Target, str]]:
    """Compare the connector's groups with LaunchDarkly's; returns the repairs to run."""
    work: list[tuple[Target, str]] = []
    groups = MetricGroup.objects.filter(project_key=project, managed=True).exclude(
        status=MappingStatus.DELETED
    )
    for group in groups.order_by("key"):
        current = remote.get(group.key)
        if current is None:
            report.groups_deleted.append(group.key)
            detail = "Deleted in LaunchDarkly."
        elif drift := group_drift(group, current):
            report.groups_changed.append(group.key)
            detail = "Changed in LaunchDarkly: " + drift
        else:
            if group.status == MappingStatus.DRIFTED:
                # Put back by hand as it was applied: no longer drift.
                group_mark(group=group, status=MappingStatus.SYNCED, detail="")
            continue
        if policy.drift_policy == DriftPolicy.REPAIR:
            work.append((group, Action.UPDATE))
            group_mark(group=group, status=MappingStatus.PENDING, detail=detail)
        else:
            group_mark(group=group, status=MappingStatus.DRIFTED, detail=detail)
    return work


def _recorded(policy: SyncSettings, report: ResyncReport) -> ResyncReport:
    """Keep what the resync found, or why it could not look, for the status page."""
    policy.last_resync_at = timezone.now()
    policy.last_resync_summary = {
        k: (len(v) if isinstance(v, list) else v) for k, v in asdict(report).items()
    }
    policy.save(update_fields=["last_resync_at", "last_resync_summary"])
    return report


def _remote_metrics(connection: LaunchDarklyConnection, project: str) -> dict[str, dict]:
    """Every metric of the project (getMetrics, 50 per page, its maximum)."""
    return _listing(connection, ROUTE_LIST, lambda href: _metrics_page(project, href))


def _remote_groups(connection: LaunchDarklyConnection, project: str) -> dict[str, dict]:
    """Every metric group of the project (getMetricGroups, 50 per page, its maximum)."""
    return _listing(connection, ROUTE_GROUP_LIST, lambda href: _groups_page(project, href))


def _listing(
    connection: LaunchDarklyConnection,
    route: str,
    page_call: Callable[[str | None], Callable[[LaunchDarklyClient], Any]],
) -> dict[str, dict]:
    """Every item of a paginated listing by key, one page per call through the
    account's shared rate budget (a big project's listing must not spend what running
    syncs need)."""
    gate = Gate(connection=connection)
    found: dict[str, dict] = {}
    next_href: str | None = None
    seen: set[str] = set()
    while True:
        page, next_href = gate.call(route, page_call(next_href))
        found.update((item["key"], item) for item in page)
        if next_href is None:
            return found
        refuse_page_loop(next_href, seen)


def _groups_page(project: str, href: str | None) -> Callable[[LaunchDarklyClient], Any]:
    return lambda client: client.list_metric_groups_page(project, next_href=href)


def _metrics_page(project: str, href: str | None) -> Callable[[LaunchDarklyClient], Any]:
    # With each metric's use: an orphan in use cannot be archived, a plan says so.
    return lambda client: client.list_metrics_page(project, next_href=href, expand=EXPAND_USE)


def _refresh_snapshot(project: str, remote: dict[str, dict]) -> None:
    """The snapshot becomes the listing: gone metrics leave it, the others are stored."""
    RemoteMetric.objects.filter(project_key=project).exclude(key__in=list(remote)).delete()
    snapshot_upsert(project, remote)
