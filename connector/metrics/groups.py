"""What a metric group means in LaunchDarkly: its MetricGroupPost body, its
fingerprint, and LaunchDarkly's rules for groups, checked before anything is sent.

LaunchDarkly's metric groups (beta API, `LD-API-Version: beta`) are funnels (ordered
steps a unit converts through) or standard groups (metrics read together). Its docs
(home/metrics/metric-groups) ask of every group: at least two metrics, sharing one
randomization unit; of a funnel: occurrence metrics (conversion, not numeric) with
average aggregation, since each step asks "did the unit get here". A plan that breaks
a rule is blocked with the reason, so nothing half-made reaches LaunchDarkly.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from connector.metrics.desired import MANAGED_TAG
from connector.metrics.models import GroupKind, MetricGroup, MetricKind, MetricMapping

GROUP_MANAGED_FIELDS = ("name", "kind", "description", "tags", "metrics")


def group_body(group: MetricGroup) -> dict[str, Any]:
    """LaunchDarkly's MetricGroupPost for this group (operationId createMetricGroup).
    Only a funnel's metrics are named: the spec requires `nameInGroup` "if and only if"
    the group is a funnel, and the Terraform provider sends "" for standard groups."""
    funnel = group.kind == GroupKind.FUNNEL
    return {
        "key": group.key,
        "name": group.name,
        "kind": group.kind,
        "description": group.description,
        "maintainerId": group.maintainer_id,
        "tags": sorted({*group.tags, MANAGED_TAG}),
        "metrics": [
            {"key": member["key"], "nameInGroup": member["nameInGroup"] if funnel else ""}
            for member in group.metrics
        ],
    }


def group_managed_view(group: dict[str, Any]) -> dict[str, Any]:
    """The managed fields of a MetricGroupPost or of LaunchDarkly's MetricGroupRep,
    normalised so that the two compare equal when LaunchDarkly holds what we asked."""
    metrics = [
        {"key": member.get("key"), "nameInGroup": member.get("nameInGroup") or ""}
        for member in group.get("metrics") or []
    ]
    if group.get("kind") != GroupKind.FUNNEL:
        # Only a funnel's steps are ordered; a standard group is a set.
        metrics.sort(key=lambda member: str(member["key"]))
    return {
        "name": group.get("name"),
        "kind": group.get("kind"),
        "description": group.get("description") or "",
        "tags": sorted(group.get("tags") or []),
        "metrics": metrics,
    }


def group_fingerprint(group: dict[str, Any]) -> str:
    canonical = json.dumps(group_managed_view(group), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def group_differences(desired: dict[str, Any], actual: dict[str, Any]) -> dict[str, tuple]:
    want, have = group_managed_view(desired), group_managed_view(actual)
    return {
        field: (want[field], have[field])
        for field in GROUP_MANAGED_FIELDS
        if want[field] != have[field]
    }


def group_json_patch(desired: dict[str, Any], actual: dict[str, Any]) -> list[dict[str, Any]]:
    """RFC 6902 operations turning LaunchDarkly's group into the desired one. `kind`
    cannot change in LaunchDarkly, so a changed kind is not patched (the plan blocks it)."""
    operations = []
    for field in group_differences(desired, actual):
        if field == "kind":
            continue
        op = "replace" if field in actual else "add"
        operations.append({"op": op, "path": f"/{field}", "value": desired[field]})
    wanted = desired.get("maintainerId")
    if wanted and held_maintainer(actual) != wanted:
        operations.append({"op": "replace", "path": "/maintainerId", "value": wanted})
    return operations


def held_maintainer(group: dict[str, Any]) -> str:
    """The member id maintaining a MetricGroupRep. The live API answers `maintainer`
    as {key, kind, _member} (contract GRP-3, from the Terraform provider); our OpenAPI
    snapshot's MaintainerRep says {member: {_id}}: both are read."""
    maintainer = group.get("maintainer") or {}
    member = maintainer.get("_member") or maintainer.get("member") or {}
    return str(maintainer.get("key") or member.get("_id") or group.get("maintainerId") or "")


def group_refusal(
    kind: str, members: Sequence[MetricMapping], *, missing: Sequence[str] = ()
) -> str:
    """Why LaunchDarkly would refuse a group of these metrics, or "" when it would not.
    `missing` names members that are no metric of the workspace."""
    label = "A funnel" if kind == GroupKind.FUNNEL else "A metric group"
    if missing:
        return f"{label} names metrics the workspace does not have: {', '.join(missing)}."
    keys = [member.metric_key for member in members]
    if len(members) < 2:
        return f"{label} needs at least two metrics; it has {len(members)}."
    if len(set(keys)) != len(keys):
        twice = sorted({key for key in keys if keys.count(key) > 1})
        return f"{label} lists a metric twice: {', '.join(twice)}."
    shared = set.intersection(*(set(member.randomization_units or ["user"]) for member in members))
    if not shared:
        units = "; ".join(
            f"{member.metric_key}: {', '.join(sorted(member.randomization_units or ['user']))}"
            for member in members
        )
        return (
            f"{label}'s metrics must share one randomization unit, and these share none ({units})."
        )
    if kind == GroupKind.FUNNEL:
        wrong = [member.metric_key for member in members if member.kind != MetricKind.BINARY]
        if wrong:
            return (
                "A funnel's steps are occurrence metrics (conversion, binary) with average "
                f"aggregation; these are not: {', '.join(wrong)}."
            )
    return ""
