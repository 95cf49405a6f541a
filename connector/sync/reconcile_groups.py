"""One metric group item's conversation with LaunchDarkly (its beta metric-group API):
make the group there match the MetricGroup row.

The rules are the metrics' (connector/sync/reconcile.py): every step is safe to repeat;
keys are deterministic, so a create that was answered but never recorded meets a 409
next time and is resolved by reading the group back (the same managed fields: ours and
done; others: a conflict showing the difference); only groups the connector created
or adopted are changed or deleted. Two things are the groups' own:

- A group names metrics by key, and LaunchDarkly refuses a group whose metrics it does
  not have (contract GRP-5). So a group is sent only once each of its metrics is in
  LaunchDarkly (`members_not_ready`); until then its item waits, and a group planned
  with its metrics goes after them.
- LaunchDarkly keeps a group that an experiment used: it refuses to delete it (contract
  GRP-11). A delete reads the group first and leaves such a group in place, saying so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from connector.launchdarkly import errors
from connector.launchdarkly.client import LaunchDarklyClient
from connector.metrics.desired import MANAGED_TAG
from connector.metrics.groups import (
    group_body,
    group_differences,
    group_fingerprint,
    group_json_patch,
    held_maintainer,
)
from connector.metrics.models import MappingStatus, MetricGroup, MetricMapping
from connector.sync.models import FINISHED_STATUSES, Action, SyncItem
from connector.sync.reconcile import (
    CREATED,
    NO_CONTENT,
    NOT_FOUND,
    OK,
    PATCH_ATTEMPTS,
    Call,
    Outcome,
    describe,
)

ROUTE_GROUP_LIST = "GET /api/v2/projects/{projectKey}/metric-groups"
ROUTE_GROUP_CREATE = "POST /api/v2/projects/{projectKey}/metric-groups"
ROUTE_GROUP_GET = "GET /api/v2/projects/{projectKey}/metric-groups/{metricGroupKey}"
ROUTE_GROUP_PATCH = "PATCH /api/v2/projects/{projectKey}/metric-groups/{metricGroupKey}"
ROUTE_GROUP_DELETE = "DELETE /api/v2/projects/{projectKey}/metric-groups/{metricGroupKey}"

# getMetricGroup's expansion that says how many experiments ever used the group (the
# active counts come without it).
EXPAND_GROUP_USE = "experimentCount"

# A metric is in LaunchDarkly once sync confirmed it (an applied hash): synced, or
# changed there by a person since (still there, under the same key).
MEMBER_READY_STATUSES = (MappingStatus.SYNCED, MappingStatus.DRIFTED)


def group_drift(group: MetricGroup, current: dict[str, Any]) -> str:
    """What LaunchDarkly holds that differs from what was applied to the group, or ""."""
    problems = []
    if group_fingerprint(current) != group.applied_hash:
        problems.append(describe(group_differences(group_body(group), current)))
    wanted = group.maintainer_id
    held = held_maintainer(current)
    if wanted and held != wanted:
        problems.append(f"maintainer: we want {wanted}, LaunchDarkly has {held or 'nobody'}")
    return "; ".join(p for p in problems if p)


# --- members first ----------------------------------------------------------------------


@dataclass(frozen=True)
class Members:
    """Member metrics of a group that are not in LaunchDarkly yet."""

    # On their way: an unfinished item will bring them.
    waiting: list[str]
    # Nothing will: "key (why)" each; the group cannot be sent until a person acts.
    stuck: list[str]


def members_not_ready(group: MetricGroup) -> Members:
    keys = group.metric_keys
    # Unfinished items first, then the mappings: a member item that finishes in between
    # has already marked its mapping synced (one transaction), so it is never taken for
    # stuck.
    coming = set(
        SyncItem.objects.filter(
            mapping__project_key=group.project_key, mapping__metric_key__in=keys
        )
        .exclude(status__in=FINISHED_STATUSES)
        .values_list("mapping__metric_key", flat=True)
    )
    mappings = {
        m.metric_key: m
        for m in MetricMapping.objects.filter(project_key=group.project_key, metric_key__in=keys)
    }
    waiting, stuck = [], []
    for key in keys:
        mapping = mappings.get(key)
        if mapping is not None and mapping.applied_hash and mapping.status in MEMBER_READY_STATUSES:
            continue
        if key in coming:
            waiting.append(key)
        elif mapping is None:
            stuck.append(f"{key} (not a metric of the workspace)")
        else:
            stuck.append(f"{key} ({mapping.get_status_display()})")
    return Members(waiting=waiting, stuck=stuck)


def sends_members(action: str) -> bool:
    """Whether the action puts the group's metrics in LaunchDarkly's hands (a delete
    does not need them)."""
    return action not in (Action.DELETE, Action.ARCHIVE)


# --- the conversation ---------------------------------------------------------------------


def reconcile_group(*, group: MetricGroup, action: str, call: Call) -> Outcome:
    body = group_body(group)
    sent = group_fingerprint(body)

    # LaunchDarkly has no archived groups: retiring one deletes it.
    if not sends_members(action):
        if not group.managed:
            return Outcome(done=True, note="Not created or adopted by the connector: left alone.")
        return _delete(group, call)

    if action == Action.CREATE:
        try:
            created = call(
                ROUTE_GROUP_CREATE, lambda c: c.create_metric_group(group.project_key, body)
            )
        except errors.Conflict:
            return _resolve_existing(group, body, sent, call, adopt_if_different=False)
        return Outcome(
            done=True, metric=created, sent_hash=sent, note="Created.", http_status=CREATED
        )

    # update and adopt (and restore, which a group never needs) start from LaunchDarkly.
    return _resolve_existing(group, body, sent, call, adopt_if_different=True)


def _patch(
    project: str, key: str, operations: list[dict[str, Any]]
) -> Callable[[LaunchDarklyClient], Any]:
    # Bound now: each attempt of the retry loop sends its own operations.
    return lambda client: client.patch_metric_group(project, key, operations)


def _resolve_existing(
    group: MetricGroup, body: dict, sent: str, call: Call, *, adopt_if_different: bool
) -> Outcome:
    project, key = group.project_key, group.key
    for attempt in range(1, PATCH_ATTEMPTS + 1):
        try:
            current = call(ROUTE_GROUP_GET, lambda c: c.get_metric_group(project, key))
        except errors.NotFound:
            # Deleted in LaunchDarkly (or never there): create it.
            created = call(ROUTE_GROUP_CREATE, lambda c: c.create_metric_group(project, body))
            return Outcome(
                done=True,
                metric=created,
                sent_hash=sent,
                note="Created (was missing).",
                http_status=CREATED,
            )

        diff = group_differences(body, current)
        operations = group_json_patch(body, current)
        if not operations and not diff:
            note = "Already in LaunchDarkly as wanted." if group.managed else "Adopted."
            return Outcome(done=True, metric=current, sent_hash=sent, note=note, http_status=OK)

        ours = group.managed or MANAGED_TAG in (current.get("tags") or [])
        if diff and not (ours or adopt_if_different):
            return Outcome(
                done=False,
                conflict=diff,
                note="A metric group with this key exists in LaunchDarkly with other fields: "
                + describe(diff),
            )
        if "kind" in diff:
            want, have = diff["kind"]
            return Outcome(
                done=False,
                conflict=diff,
                note=f"The metric group with this key in LaunchDarkly is a {have} group, and "
                f"LaunchDarkly cannot change a group's kind (we want {want}). Delete it there, "
                "or give ours another key.",
            )
        try:
            patched = call(ROUTE_GROUP_PATCH, _patch(project, key, operations))
        except errors.ConcurrentChange:
            if attempt == PATCH_ATTEMPTS:
                raise  # retryable: the item backs off and tries again later
            continue
        changed = [*diff]
        if any(op["path"] == "/maintainerId" for op in operations):
            changed.append("maintainer")
        note = "Updated" if group.managed or ours else "Adopted and updated"
        if changed:
            note += ": " + ", ".join(changed)
        if attempt > 1:
            note += f" (after {attempt - 1} concurrent change{'s' if attempt > 2 else ''})"
        return Outcome(done=True, metric=patched, sent_hash=sent, note=note + ".", http_status=OK)
    raise AssertionError("unreachable: the last attempt returns or raises")


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' if count != 1 else ''}"


def _delete(group: MetricGroup, call: Call) -> Outcome:
    """Delete the group unless LaunchDarkly keeps it. Read first: LaunchDarkly refuses
    to delete a group connected to an experiment, and saying why beats a bare 400."""
    project, key = group.project_key, group.key
    try:
        current = call(
            ROUTE_GROUP_GET, lambda c: c.get_metric_group(project, key, expand=EXPAND_GROUP_USE)
        )
    except errors.NotFound:  # already gone: the goal is reached
        return Outcome(
            done=True, deleted=True, note="Already gone from LaunchDarkly.", http_status=NOT_FOUND
        )
    experiments = max(
        int(current.get("experimentCount") or 0), int(current.get("activeExperimentCount") or 0)
    )
    if experiments:
        # For good: an experiment's results refer to the group, so LaunchDarkly keeps it
        # (as it keeps metrics an experiment used). Not a failure to retry, and not the
        # connector's any more: a later plan naming it again adopts it back.
        return Outcome(
            done=True,
            released=True,
            metric=current,
            note=f"Connected to {_plural(experiments, 'experiment')}: LaunchDarkly keeps it; "
            "left in place.",
            http_status=OK,
        )
    rollouts = int(current.get("activeGuardedRolloutCount") or 0)
    if rollouts:
        # For now only: once the rollouts end, the delete goes through.
        return Outcome(
            done=False,
            note=f"In use by {_plural(rollouts, 'active guarded rollout')}: LaunchDarkly does "
            "not delete a metric group in use. Retry once it is no longer used.",
        )
    try:
        call(ROUTE_GROUP_DELETE, lambda c: c.delete_metric_group(project, key))
    except errors.NotFound:
        pass
    except errors.InvalidRequest as exc:
        return Outcome(done=False, note=f"LaunchDarkly refused to delete it: {exc.message}")
    return Outcome(done=True, deleted=True, note="Deleted in LaunchDarkly.", http_status=NO_CONTENT)
