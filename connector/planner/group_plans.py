"""The metric groups of a plan: funnels from ordered steps, standard groups from a
selection or a tag, each checked against LaunchDarkly's rules before anything is sent.

A group spec (the picker's funnel builder and metrics-as-code files write the same
JSON) is `{"name", "kind", "key"?, "description"?, "tags"?, "tag"?, "metrics": [...]}`;
each member is a metric key, `{"key", "name"?}`, or `{"event", "kind"?, "filter"?,
"name"?}` for a metric of the plan or of the workspace. `tag` makes a standard group
of every metric carrying that tag.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from connector.metrics.filters import FilterRefused, filter_digest, parse_conditions
from connector.metrics.groups import group_body, group_differences, group_fingerprint, group_refusal
from connector.metrics.keys import group_key_for
from connector.metrics.models import (
    GroupKind,
    MappingStatus,
    MetricGroup,
    MetricKind,
    MetricMapping,
)
from connector.planner.actions import PlanAction
from tenants.scope import current_tenant

GROUP_CHOSEN_FIELDS = (
    "project_key",
    "name",
    "description",
    "tags",
    "maintainer_id",
    "metrics",
    "from_tag",
    "desired_hash",
)


@dataclass
class GroupRow:
    """A metric group of the plan and what the connector will do for it."""

    group: MetricGroup  # unsaved when new
    body: dict[str, Any]
    action: str
    reason: str = ""
    changes: dict[str, tuple] = field(default_factory=dict)


class _Members:
    """The metrics a group may name: the plan's own rows, then the workspace's other
    metrics in the project (a funnel may reuse metrics planned before)."""

    def __init__(self, rows: list, project_key: str) -> None:
        self.blocked: dict[str, str] = {}
        self.by_key: dict[str, MetricMapping] = {}
        for row in rows:
            if row.action == PlanAction.ARCHIVE:
                continue
            if row.action == PlanAction.BLOCKED:
                self.blocked[row.mapping.metric_key] = row.reason
            self.by_key[row.mapping.metric_key] = row.mapping
        planned = set(self.by_key)
        for mapping in (
            MetricMapping.objects.filter(project_key=project_key)
            .exclude(status__in=(MappingStatus.DELETED, MappingStatus.ARCHIVED))
            .exclude(metric_key__in=planned)
            .select_related("source_event")
        ):
            self.by_key[mapping.metric_key] = mapping

    def find(self, member: Any, kind: str) -> tuple[MetricMapping | None, str]:
        """The metric a member names, and how it was named (for a refusal)."""
        if isinstance(member, str):
            return self.by_key.get(member), member
        if member.get("key"):
            return self.by_key.get(str(member["key"])), str(member["key"])
        event_key = str(member.get("event") or "")
        wanted_kind = str(member.get("kind") or MetricKind.BINARY)
        text = str(member.get("filter") or "")
        label = f"{event_key} ({wanted_kind}{', where ' + text if text else ''})"
        candidates = [
            m
            for m in self.by_key.values()
            if m.source_event.key == event_key and m.kind == wanted_kind
        ]
        if not candidates:
            return None, label
        if "variant" in member:
            variant = str(member["variant"])
        else:
            try:
                variant = filter_digest(
                    parse_conditions(text, candidates[0].source_event.properties or {})
                )
            except FilterRefused:
                return None, label
        found = next((m for m in candidates if m.variant == variant), None)
        return found, label

    def tagged(self, tag: str) -> list[MetricMapping]:
        return sorted(
            (m for m in self.by_key.values() if tag in (m.tags or [])),
            key=lambda m: m.metric_key,
        )


def group_rows(
    *,
    specs: list[dict[str, Any]],
    rows: list,
    project_key: str,
    maintainer: str,
    conventions_tags: list[str],
    prune: bool,
) -> list[GroupRow]:
    if not specs and not prune:
        return []
    members = _Members(rows, project_key)
    existing = {g.key: g for g in MetricGroup.objects.filter(project_key=project_key)}
    result = [
        _group_row(spec, members, existing, project_key, maintainer, conventions_tags)
        for spec in specs
    ]
    if prune:
        named = {row.group.key for row in result}
        for group in sorted(existing.values(), key=lambda g: g.key):
            if group.key in named or not group.managed or group.status == MappingStatus.DELETED:
                continue
            result.append(
                GroupRow(
                    group=group,
                    body=group_body(group),
                    action=PlanAction.DELETE,
                    reason="No longer in the file: deleted in LaunchDarkly (unless an "
                    "experiment uses it).",
                )
            )
    return result


def _group_row(
    spec: dict[str, Any],
    members: _Members,
    existing: dict[str, MetricGroup],
    project_key: str,
    maintainer: str,
    conventions_tags: list[str],
) -> GroupRow:
    kind = str(spec.get("kind") or GroupKind.STANDARD)
    name = str(spec.get("name") or "").strip()
    key = str(spec.get("key") or group_key_for(name))
    tag = str(spec.get("tag") or "")
    found: list[MetricMapping] = []
    names: list[str] = []
    missing: list[str] = []
    if tag:
        found = members.tagged(tag)
        names = [m.name for m in found]
    for member in spec.get("metrics") or []:
        mapping, label = members.find(member, kind)
        if mapping is None:
            missing.append(label)
            continue
        found.append(mapping)
        given = member.get("name") if isinstance(member, dict) else None
        names.append(str(given or mapping.name))
    group = MetricGroup(
        tenant_id=current_tenant().pk,
        project_key=project_key,
        key=key,
        name=name or key,
        kind=kind,
        description=str(spec.get("description") or ""),
        tags=sorted({*(spec.get("tags") or []), *conventions_tags}),
        maintainer_id=maintainer,
        metrics=[
            # Only a funnel's steps carry a name in LaunchDarkly (see group_body).
            {"key": m.metric_key, "nameInGroup": label[:200] if kind == GroupKind.FUNNEL else ""}
            for m, label in zip(found, names, strict=True)
        ],
        from_tag=tag,
    )
    body = group_body(group)
    group.desired_hash = group_fingerprint(body)
    row = GroupRow(group=group, body=body, action=PlanAction.CREATE)
    current = existing.get(key)
    if reason := _refusal(kind, name, found, missing, members, maintainer, tag):
        row.action, row.reason = PlanAction.BLOCKED, reason
    elif current is not None and current.kind != kind:
        row.action = PlanAction.BLOCKED
        row.reason = (
            f"LaunchDarkly cannot change a group's kind ({current.kind} → {kind}); "
            "give the new group another name."
        )
    elif current is not None and current.status != MappingStatus.DELETED:
        previous = group_body(current)
        for name_ in GROUP_CHOSEN_FIELDS:
            setattr(current, name_, getattr(group, name_))
        row.group = current
        if current.applied_hash == group.desired_hash:
            row.action = PlanAction.UNCHANGED
        else:
            row.action = PlanAction.UPDATE
            row.changes = group_differences(body, previous)
    elif current is not None:
        for name_ in GROUP_CHOSEN_FIELDS:
            setattr(current, name_, getattr(group, name_))
        row.group = current  # deleted before, planned again: created anew
    return row


def _refusal(
    kind: str,
    name: str,
    found: list[MetricMapping],
    missing: list[str],
    members: _Members,
    maintainer: str,
    tag: str,
) -> str:
    if not name:
        return "A metric group needs a name."
    if kind not in GroupKind.values:
        return f"“{kind}” is not a kind of metric group (funnel or standard)."
    if kind == GroupKind.FUNNEL and tag:
        return "A funnel's steps are ordered: list them; a tag makes a standard group only."
    if not maintainer:
        return (
            "LaunchDarkly needs a maintainer for every metric group: name one in the sync "
            "settings (a service token acts for nobody)."
        )
    for mapping in found:
        if why := members.blocked.get(mapping.metric_key):
            return f"Its metric {mapping.metric_key} is blocked: {why}"
    return group_refusal(kind, found, missing=missing)
