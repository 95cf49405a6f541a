"""One item's conversation with LaunchDarkly: make the metric there match the mapping.

Every step is safe to repeat. Keys are deterministic, so a create that was answered
but never recorded (a crash, a dropped connection) meets a 409 next time and is
resolved by reading the metric back: the same managed fields mean it is ours and
done; different ones are a conflict shown with the difference. Only metrics the
connector created or adopted are ever changed or deleted.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from connector.launchdarkly import errors
from connector.launchdarkly.client import LaunchDarklyClient
from connector.metrics.desired import MANAGED_TAG, differences, fingerprint, json_patch, metric_body
from connector.metrics.models import MetricMapping
from connector.sync.models import Action

# Each LaunchDarkly call goes through the caller's rate-limit gate, named by route.
Call = Callable[[str, Callable[[LaunchDarklyClient], Any]], Any]

ROUTE_LIST = "GET /api/v2/metrics/{projectKey}"
ROUTE_CREATE = "POST /api/v2/metrics/{projectKey}"
ROUTE_GET = "GET /api/v2/metrics/{projectKey}/{metricKey}"
ROUTE_PATCH = "PATCH /api/v2/metrics/{projectKey}/{metricKey}"
ROUTE_DELETE = "DELETE /api/v2/metrics/{projectKey}/{metricKey}"

# LaunchDarkly: what each operation answers when it succeeds (postMetric 201,
# getMetric and patchMetric 200, deleteMetric 204). The client returns bodies, not
# statuses, and turns every other answer into an error, so a success is one of these.
CREATED, OK, NO_CONTENT, NOT_FOUND = 201, 200, 204, 404


# getMetric's expansion that says how many experiments use a metric.
EXPAND_USE = "experimentCount"
# LaunchDarkly answers a concurrent change with 409 optimistic_locking_error and asks
# for a retry: re-read, re-diff, re-send, this many times before the item backs off.
PATCH_ATTEMPTS = 3


@dataclass
class Outcome:
    done: bool  # False: a conflict for a person to look at
    note: str = ""
    # LaunchDarkly's representation afterwards (of the metric group, for a group item).
    metric: dict[str, Any] | None = None
    sent_hash: str = ""
    deleted: bool = False
    archived: bool = False  # archived in LaunchDarkly (an orphan's end, or on the way)
    # Archived because its event left the source (restored when it returns), not
    # because a plan dropped it (a metrics file that no longer names it).
    orphan: bool = False
    # Left in LaunchDarkly, and no longer the connector's to manage (a metric group
    # that experiments used, which LaunchDarkly keeps).
    released: bool = False
    conflict: dict[str, tuple] = field(default_factory=dict)
    # The HTTP status of the call that settled it (None when no call was needed).
    http_status: int | None = None


def describe(diff: dict[str, tuple]) -> str:
    return "; ".join(
        f"{name}: we want {json.dumps(want)}, LaunchDarkly has {json.dumps(have)}"
        for name, (want, have) in diff.items()
    )


def active_use(metric: dict[str, Any]) -> int:
    """Active experiments, guarded rollouts and metric groups using the metric: while
    any does, LaunchDarkly refuses to archive it."""
    return sum(
        int(metric.get(name) or 0)
        for name in ("activeExperimentCount", "activeGuardedRolloutCount", "metricGroupCount")
    )


def use_phrase(metric: dict[str, Any]) -> str:
    parts = [
        f"{count} {label}{'s' if count != 1 else ''}"
        for name, label in (
            ("activeExperimentCount", "active experiment"),
            ("activeGuardedRolloutCount", "active guarded rollout"),
            ("metricGroupCount", "metric group"),
        )
        if (count := int(metric.get(name) or 0))
    ]
    return ", ".join(parts)


def reconcile(*, mapping: MetricMapping, action: str, call: Call) -> Outcome:
    project = mapping.project_key
    body = metric_body(mapping, event_key=mapping.source_event.key)
    sent = fingerprint(body)

    if action in (Action.DELETE, Action.ARCHIVE):
        if not mapping.managed:
            return Outcome(done=True, note="Not created or adopted by the connector: left alone.")
        return _retire(mapping, call, delete=action == Action.DELETE)

    if action == Action.CREATE:
        try:
            metric = call(ROUTE_CREATE, lambda c: c.create_metric(project, body))
        except errors.Conflict:
            return _resolve_existing(mapping, body, sent, call, adopt_if_different=False)
        return _after_create(mapping, body, sent, metric, call, note="Created.")

    # update, adopt and restore start from what LaunchDarkly holds now.
    return _resolve_existing(
        mapping, body, sent, call, adopt_if_different=True, restore=action == Action.RESTORE
    )


def _maintainer_ops(body: dict, current: dict) -> list[dict[str, Any]]:
    """LaunchDarkly ignores `maintainerId` on create (the Terraform provider sets it
    with an update afterwards), so it is compared and patched on its own."""
    wanted = body.get("maintainerId")
    if not wanted or current.get("maintainerId") == wanted:
        return []
    op = "replace" if "maintainerId" in current else "add"
    return [{"op": op, "path": "/maintainerId", "value": wanted}]


def _after_create(
    mapping: MetricMapping, body: dict, sent: str, metric: dict, call: Call, *, note: str
) -> Outcome:
    project, key = mapping.project_key, mapping.metric_key
    if ops := _maintainer_ops(body, metric):
        metric = call(ROUTE_PATCH, lambda c: c.patch_metric(project, key, ops))
        note = f"{note[:-1]}; maintainer set."
    return Outcome(done=True, metric=metric, sent_hash=sent, note=note, http_status=CREATED)


def _retire(mapping: MetricMapping, call: Call, *, delete: bool) -> Outcome:
    """Archive the metric (LaunchDarkly's advice), and with `delete` also delete it
    where LaunchDarkly allows: only archived metrics that no experiment used."""
    project, key = mapping.project_key, mapping.metric_key
    orphan = mapping.source_event.is_removed
    try:
        current = call(ROUTE_GET, lambda c: c.get_metric(project, key, expand=EXPAND_USE))
    except errors.NotFound:  # already gone: the goal is reached
        return Outcome(
            done=True, deleted=True, note="Already gone from LaunchDarkly.", http_status=NOT_FOUND
        )
    status = OK
    # From the read (expanded): a patch's answer does not carry the count.
    used_by_experiments = int(current.get("experimentCount") or 0)
    if not current.get("archived"):
        if in_use := use_phrase(current):
            return Outcome(
                done=False,
                note=f"In use by {in_use}: LaunchDarkly does not archive a metric in use. "
                "Retry once it is no longer used.",
            )
        archive = [{"op": "replace", "path": "/archived", "value": True}]
        current = call(ROUTE_PATCH, lambda c: c.patch_metric(project, key, archive))
    archived = Outcome(
        done=True,
        archived=True,
        metric=current,
        note="Archived in LaunchDarkly: the event was removed at the source."
        if orphan
        else "Archived in LaunchDarkly: no longer in the plan (a metrics file dropped it).",
        orphan=orphan,
        http_status=status,
    )
    if not delete:
        return archived
    if used_by_experiments:
        archived.note = "Archived, not deleted: LaunchDarkly keeps metrics that an experiment used."
        return archived
    try:
        call(ROUTE_DELETE, lambda c: c.delete_metric(project, key))
    except errors.NotFound:
        pass
    except errors.InvalidRequest as exc:
        archived.note = f"Archived; LaunchDarkly refused to delete it: {exc.message}"
        return archived
    return Outcome(
        done=True,
        deleted=True,
        note="Archived and deleted in LaunchDarkly.",
        http_status=NO_CONTENT,
    )


def _patch(
    project: str, key: str, operations: list[dict[str, Any]]
) -> Callable[[LaunchDarklyClient], Any]:
    # Bound now: each attempt of the retry loop sends its own operations.
    return lambda client: client.patch_metric(project, key, operations)


def _resolve_existing(
    mapping: MetricMapping,
    body: dict,
    sent: str,
    call: Call,
    *,
    adopt_if_different: bool,
    restore: bool = False,
) -> Outcome:
    project, key = mapping.project_key, mapping.metric_key
    for attempt in range(1, PATCH_ATTEMPTS + 1):
        try:
            current = call(ROUTE_GET, lambda c: c.get_metric(project, key))
        except errors.NotFound:
            # Deleted in LaunchDarkly (or never there): create it.
            metric = call(ROUTE_CREATE, lambda c: c.create_metric(project, body))
            return _after_create(mapping, body, sent, metric, call, note="Created (was missing).")

        diff = differences(body, current)
        operations = json_patch(body, current) + _maintainer_ops(body, current)
        unarchive = restore and bool(current.get("archived"))
        if unarchive:
            operations.append({"op": "replace", "path": "/archived", "value": False})
        if not operations:
            note = "Already in LaunchDarkly as wanted." if mapping.managed else "Adopted."
            return Outcome(done=True, metric=current, sent_hash=sent, note=note, http_status=OK)

        ours = mapping.managed or MANAGED_TAG in (current.get("tags") or [])
        if diff and not (ours or adopt_if_different):
            return Outcome(
                done=False,
                conflict=diff,
                note="A metric with this key exists in LaunchDarkly with other fields: "
                + describe(diff),
            )
        try:
            patched = call(ROUTE_PATCH, _patch(project, key, operations))
        except errors.ConcurrentChange:
            if attempt == PATCH_ATTEMPTS:
                raise  # retryable: the item backs off and tries again later
            continue
        changed = [*diff, *(["maintainer"] if _maintainer_ops(body, current) else [])]
        note = "Restored (un-archived)" if unarchive else "Updated"
        if changed:
            note += ": " + ", ".join(changed)
        if attempt > 1:
            note += f" (after {attempt - 1} concurrent change{'s' if attempt > 2 else ''})"
        return Outcome(done=True, metric=patched, sent_hash=sent, note=note + ".", http_status=OK)
    raise AssertionError("unreachable: the last attempt returns or raises")
