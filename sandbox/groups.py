"""Metric groups, LaunchDarkly's beta API (`/api/v2/projects/{projectKey}/metric-groups`):
operationIds getMetricGroups, createMetricGroup, getMetricGroup, patchMetricGroup and
deleteMetricGroup. Every route needs `LD-API-Version: beta` (checked in `app.py`).

What LaunchDarkly says (contract rows GRP-1 to GRP-12 give each source):
- Spec: bodies are `MetricGroupPost` {key?, name, kind: funnel | standard, description?,
  maintainerId, tags, metrics [{key, nameInGroup}]} and answers `MetricGroupRep`;
  `nameInGroup` is "Required if and only if the metric group is a funnel"; the list
  takes `limit` ("Defaults to 20. Maximum limit is 50"), `offset`, `filter` (kind,
  query, hasConnections, maintainerIds, maintainerTeamKey, experimentStatus, as
  `kind equals 'funnel' and query equals 'x'`) and `sort` (name, createdAt,
  connectionCount); getMetricGroup expands `experiments` and `experimentCount`.
- Docs (home/metrics/metric-groups, metric-groups-manage): a group is "two or more
  metrics" that "all share a common randomization unit"; "Funnel metric groups cannot
  include custom numeric metrics" ("only custom conversion binary, custom conversion
  count, clicked or tapped, and page viewed metrics"); "You cannot include warehouse
  native metrics" (the sandbox has none).
- TF (terraform-provider-launchdarkly, `resource_metric_group_framework.go`): "The API
  requires at least two metrics per group"; an empty maintainerId is refused with 400
  "maintainer ID is required"; `name_in_group` is "Required for funnel metric groups
  and not permitted for standard metric groups"; `key` and `kind` force a new group;
  updates replace /name, /description, /maintainerId, /tags and /metrics (as
  [{key, nameInGroup}]); the API keeps metrics in the order given, for both kinds; it
  answers `maintainer` as {key, kind, _member} (so does launchdarkly-api 25's model).

Ours (open; no source settles them), strict where we had to choose:
- each metric must exist in the project (400 naming it), not be archived and appear
  once; a metric without randomization units counts as having the project's default;
- a missing `key` is made from the name (the connector always sends one); a duplicate
  key is 409 `conflict`; unknown fields are ignored;
- patches follow patchMetric: JSON Patch, optionally wrapped as {comment, patch};
  `key` and `kind` cannot change (an unchanged replace is a no-op); the result is
  checked again; a failed `test` is 409 `optimistic_locking_error`;
- a group connected to an experiment or an active guarded rollout (set through
  `/_sandbox/metric-group-usage`: experiments live outside the sandbox) cannot be
  deleted: 400 `invalid_request`;
- `experimentCount` only when expanded (getMetricGroup); the active counts always;
  `expand=experiments` is ignored, as the sandbox has no experiments to list; the list
  is in creation order unless sorted; `experimentStatus` filters are refused (400).
"""

from __future__ import annotations

import re
import uuid
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from sandbox import jsonpatch
from sandbox.api import KEY_PATTERN, _count, _expand, _json_body, _link, _paginate
from sandbox.messages import ApiError, Request, Response, json_response
from sandbox.openapi import component_errors, load_spec
from sandbox.state import Account, MetricGroupUsage, Project, Token, now_ms, slug

if TYPE_CHECKING:
    from sandbox.api import RestApi

GROUPS_MAX_LIMIT = 50  # Spec, getMetricGroups: "Maximum limit is 50"
EDITABLE = ("name", "description", "maintainerId", "tags", "metrics")
IMMUTABLE = ("key", "kind")
KINDS = ("funnel", "standard")
SORTS = {
    "name": lambda group, usage: group["name"].lower(),
    "createdAt": lambda group, usage: group["_creationDate"],
    "connectionCount": lambda group, usage: usage.experiments,
}
# getMetricGroups' filter fields and the operators its table gives each (maintainerIds:
# the spec says anyOf, the live docs page equals; both are taken).
FILTER_OPERATORS = {
    "kind": ("equals",),
    "query": ("equals",),
    "hasConnections": ("equals",),
    "maintainerIds": ("anyOf", "equals"),
    "maintainerTeamKey": ("equals",),
    "experimentStatus": ("equals",),
}
FILTER_TERM = re.compile(r"^(?P<field>\w+)\s+(?P<op>\w+)\s+(?P<value>.+)$", re.DOTALL)
# LaunchDarkly's message for an empty maintainerId (TF `Create` comment).
MAINTAINER_REQUIRED = "maintainer ID is required"


def _group_path(project: Project, key: str) -> str:
    return f"/api/v2/projects/{project.key}/metric-groups/{key}"


def _split_terms(raw: str) -> list[str]:
    """`a equals 'x' and b anyOf [y, z]` -> its terms, on ` and ` outside quotes and
    brackets."""
    terms, current, quote, depth = [], "", "", 0
    index = 0
    while index < len(raw):
        char = raw[index]
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "[]":
            depth += 1 if char == "[" else -1
        elif depth == 0 and raw[index : index + 5].lower() == " and ":
            terms.append(current.strip())
            current, index = "", index + 5
            continue
        current += char
        index += 1
    terms.append(current.strip())
    return [term for term in terms if term]


def _filter_values(raw: str) -> list[str]:
    raw = raw.strip()
    if raw.startswith("[") and raw.endswith("]"):
        return [part.strip().strip("'\"") for part in raw[1:-1].split(",") if part.strip()]
    return [raw.strip("'\"")]


class MetricGroupsApi:
    def __init__(self, rest: RestApi) -> None:
        self.rest = rest
        schema = load_spec()["components"]["schemas"]["MetricGroupPost"]
        self.post_fields = tuple(schema["properties"])

    # --- lookups and representations ---------------------------------------------------

    def _group(self, project: Project, key: str) -> dict[str, Any]:
        group = project.metric_groups.get(key)
        if group is None:
            raise ApiError(404, "not_found", f"Unknown metric group key {key}")
        return group

    def _usage(self, project: Project, key: str) -> MetricGroupUsage:
        return project.group_usage.get(key, MetricGroupUsage())

    def _maintainer(self, account: Account, member_id: str) -> dict[str, Any]:
        """MaintainerRep as the live API answers it (TF, launchdarkly-api 25); our spec
        snapshot's MaintainerRep {member, team} requires nothing, so both hold."""
        member = account.members.get(member_id)
        rep: dict[str, Any] = {"key": member_id, "kind": "member"}
        if member is not None:
            rep["_member"] = self.rest._member_summary(member)
        return rep

    def _member_rep(self, project: Project, member: dict[str, Any]) -> dict[str, Any]:
        """MetricInGroupRep: the metric as it is now, with its name in the group."""
        key = member["key"]
        metric = project.metrics.get(key, {"name": key, "kind": "custom"})
        rep: dict[str, Any] = {
            "key": key,
            "name": metric["name"],
            "kind": metric["kind"],
            "_links": {"self": _link(f"/api/v2/metrics/{project.key}/{key}")},
        }
        for name in ("_versionId", "isNumeric", "unitAggregationType", "eventKey"):
            if name in metric:
                rep[name] = metric[name]
        rep["randomizationUnits"] = self._units(project, metric)
        if member["nameInGroup"]:
            rep["nameInGroup"] = member["nameInGroup"]
        return rep

    def _units(self, project: Project, metric: dict[str, Any]) -> list[str]:
        return list(metric.get("randomizationUnits") or [project.default_randomization_unit()])

    def group_rep(
        self,
        account: Account,
        project: Project,
        group: dict[str, Any],
        expand: frozenset[str] = frozenset(),
    ) -> dict[str, Any]:
        """MetricGroupRep."""
        usage = self._usage(project, group["key"])
        rep: dict[str, Any] = {
            "_id": group["_id"],
            "key": group["key"],
            "name": group["name"],
            "kind": group["kind"],
        }
        if "description" in group:
            rep["description"] = group["description"]
        rep.update(
            {
                "_links": {
                    "self": _link(_group_path(project, group["key"])),
                    "parent": _link(f"/api/v2/projects/{project.key}"),
                },
                "tags": list(group["tags"]),
                "_creationDate": group["_creationDate"],
                "_lastModified": group["_lastModified"],
                "maintainer": self._maintainer(account, group["maintainerId"]),
                "metrics": [self._member_rep(project, member) for member in group["metrics"]],
                "_version": group["_version"],
                "activeExperimentCount": usage.active_experiments,
                "activeGuardedRolloutCount": usage.active_guarded_rollouts,
            }
        )
        if "experimentCount" in expand:
            rep["experimentCount"] = usage.experiments
        return rep

    # --- rules ------------------------------------------------------------------------

    def _checked_fields(
        self, caller: Token, project: Project, given: dict[str, Any]
    ) -> dict[str, Any]:
        """MetricGroupPost's fields of `given`, checked against the schema and the rules;
        400 naming every problem."""
        fields = {name: value for name, value in given.items() if name in self.post_fields}
        problems = component_errors("MetricGroupPost", fields)
        if problems:
            raise ApiError(400, "invalid_request", "; ".join(problems))
        fields["metrics"] = [
            {"key": member["key"], "nameInGroup": member["nameInGroup"]}
            for member in fields["metrics"]
        ]
        if "key" not in fields:
            fields["key"] = slug(fields["name"])
        problems = self._rules(caller, project, fields)
        if problems:
            raise ApiError(400, "invalid_request", "; ".join(problems))
        return fields

    def _rules(self, caller: Token, project: Project, fields: dict[str, Any]) -> list[str]:
        problems = []
        if not KEY_PATTERN.match(fields["key"]):
            problems.append("key: letters, digits, '.', '_' and '-' only")
        if not fields["name"].strip():
            problems.append("name: required")
        maintainer = fields["maintainerId"]
        if not maintainer:
            problems.append(MAINTAINER_REQUIRED)
        elif maintainer not in self.rest._account(caller).members:
            problems.append(f"maintainerId: {maintainer} is not a member of this account")
        members = fields["metrics"]
        if len(members) < 2:
            problems.append(
                f"metrics: a metric group needs at least two metrics; it has {len(members)}"
            )
        funnel = fields["kind"] == "funnel"
        seen: set[str] = set()
        found: list[dict[str, Any]] = []
        for index, member in enumerate(members):
            key, where = member["key"], f"metrics[{index}]"
            if key in seen:
                problems.append(f"{where}: metric {key} is listed more than once")
                continue
            seen.add(key)
            metric = project.metrics.get(key)
            if metric is None:
                problems.append(f"{where}: metric {key} does not exist in project {project.key}")
                continue
            found.append(metric)
            if metric.get("archived"):
                problems.append(f"{where}: metric {key} is archived")
            named = bool(member["nameInGroup"].strip())
            if funnel and not named:
                problems.append(f"{where}.nameInGroup: required in a funnel (metric {key})")
            if not funnel and member["nameInGroup"]:
                problems.append(
                    f"{where}.nameInGroup: only a funnel's metrics are named; leave it empty "
                    f"in a standard group (metric {key})"
                )
            if funnel and metric["kind"] == "custom" and metric.get("isNumeric"):
                problems.append(
                    f"{where}: metric {key} is a custom numeric metric; a funnel takes only "
                    "conversion (binary or count), clicked or tapped, and page viewed metrics"
                )
        if len(found) >= 2:
            units = [(metric["key"], set(self._units(project, metric))) for metric in found]
            if not set.intersection(*(unit_set for _, unit_set in units)):
                listed = "; ".join(f"{key}: {', '.join(sorted(u))}" for key, u in units)
                problems.append(
                    "metrics: the metrics of a group must share a randomization unit, and "
                    f"these share none ({listed})"
                )
        return problems

    # --- handlers -----------------------------------------------------------------------

    def get_metric_groups(self, request: Request, caller: Token, project_key: str) -> Response:
        """getMetricGroups"""
        project = self.rest._project(caller, project_key)
        groups = self._filtered(project, request.query.get("filter", ""))
        groups = self._sorted(project, groups, request.query.get("sort", ""))
        base = f"/api/v2/projects/{project.key}/metric-groups"
        page, links = _paginate(request, base, groups, max_limit=GROUPS_MAX_LIMIT)
        links["parent"] = _link(f"/api/v2/projects/{project.key}")
        account = self.rest._account(caller)
        return json_response(
            200,
            {
                "items": [self.group_rep(account, project, group) for group in page],
                "_links": links,
                "totalCount": len(groups),
            },
        )

    def _sorted(
        self, project: Project, groups: list[dict[str, Any]], raw: str
    ) -> list[dict[str, Any]]:
        """By each comma-separated field in turn, `-` for descending; creation order
        when no sort is given."""
        for field in reversed([part.strip() for part in raw.split(",") if part.strip()]):
            value_of = SORTS.get(field.lstrip("-"))
            if value_of is None:
                raise ApiError(400, "invalid_request", "sort: name, createdAt or connectionCount")
            decorated = [(value_of(g, self._usage(project, g["key"])), g) for g in groups]
            # list.sort is stable in both directions: ties keep their order.
            decorated.sort(key=itemgetter(0), reverse=field.startswith("-"))
            groups = [group for _, group in decorated]
        return groups

    def _filtered(self, project: Project, raw: str) -> list[dict[str, Any]]:
        groups = list(project.metric_groups.values())
        for term in _split_terms(raw):
            match = FILTER_TERM.match(term)
            if match is None:
                raise ApiError(400, "invalid_request", f"cannot parse filter term {term!r}")
            field, op, values = match["field"], match["op"], _filter_values(match["value"])
            operators = FILTER_OPERATORS.get(field)
            if operators is None:
                known = ", ".join(FILTER_OPERATORS)
                message = f"unsupported filter {field}; one of {known}"
                raise ApiError(400, "invalid_request", message)
            if op not in operators:
                raise ApiError(
                    400, "invalid_request", f"filter {field} takes {' or '.join(operators)}"
                )
            groups = self._filter_term(project, groups, field, values)
        return groups

    def _filter_term(
        self, project: Project, groups: list[dict[str, Any]], field: str, values: list[str]
    ) -> list[dict[str, Any]]:
        if field == "kind":
            if len(values) != 1 or values[0] not in KINDS:
                raise ApiError(400, "invalid_request", "filter kind: funnel or standard")
            return [g for g in groups if g["kind"] == values[0]]
        if field == "query":
            needles = [value.lower() for value in values]
            return [
                g
                for g in groups
                if any(n in g["key"].lower() or n in g["name"].lower() for n in needles)
            ]
        if field == "hasConnections":
            if values not in (["true"], ["false"]):
                raise ApiError(400, "invalid_request", "filter hasConnections: true or false")
            wanted = values == ["true"]
            return [g for g in groups if self._usage(project, g["key"]).connected == wanted]
        if field == "maintainerIds":
            return [g for g in groups if g["maintainerId"] in values]
        if field == "maintainerTeamKey":
            return []  # the sandbox has no teams, so no group is maintained by one
        raise ApiError(
            400,
            "invalid_request",
            "filter experimentStatus: not modelled by the sandbox, which has no experiments",
        )

    def create_metric_group(self, request: Request, caller: Token, project_key: str) -> Response:
        """createMetricGroup"""
        project = self.rest._project(caller, project_key)
        body = _json_body(request)
        if not isinstance(body, dict):
            raise ApiError(400, "invalid_request", "body must be a MetricGroupPost object")
        fields = self._checked_fields(caller, project, body)
        if fields["key"] in project.metric_groups:
            raise ApiError(
                409, "conflict", f"A metric group with key {fields['key']} already exists"
            )
        created = now_ms()
        group = {
            "_id": str(uuid.uuid4()),
            **fields,
            "_version": 1,
            "_creationDate": created,
            "_lastModified": created,
        }
        project.metric_groups[group["key"]] = group
        account = self.rest._account(caller)
        return json_response(201, self.group_rep(account, project, group))

    def get_metric_group(
        self, request: Request, caller: Token, project_key: str, group_key: str
    ) -> Response:
        """getMetricGroup"""
        project = self.rest._project(caller, project_key)
        group = self._group(project, group_key)
        account = self.rest._account(caller)
        return json_response(200, self.group_rep(account, project, group, _expand(request)))

    def patch_metric_group(
        self, request: Request, caller: Token, project_key: str, group_key: str
    ) -> Response:
        """patchMetricGroup (RFC 6902 JSON Patch, optionally wrapped as {comment, patch})"""
        project = self.rest._project(caller, project_key)
        group = self._group(project, group_key)
        body = _json_body(request)
        try:
            operations = jsonpatch.operations_of_body(body)
        except jsonpatch.PatchError as exc:
            raise ApiError(400, "invalid_request", str(exc)) from exc
        for op in operations:
            self._check_patch_paths(group, op)
        try:
            patched = jsonpatch.apply_patch(group, operations)
        except jsonpatch.PatchTestFailed as exc:
            raise ApiError(409, "optimistic_locking_error", str(exc)) from exc
        except jsonpatch.PatchError as exc:
            raise ApiError(400, "invalid_request", str(exc)) from exc
        fields = self._checked_fields(caller, project, patched)
        patched.update(fields, _version=group["_version"] + 1, _lastModified=now_ms())
        project.metric_groups[group_key] = patched
        account = self.rest._account(caller)
        return json_response(200, self.group_rep(account, project, patched))

    def _check_patch_paths(self, group: dict[str, Any], op: dict[str, Any]) -> None:
        """Only the editable fields; `key` and `kind` may be replaced by what they are."""
        for pointer in (op["path"], op.get("from")):
            if pointer is None or op["op"] == "test":
                continue
            head = (jsonpatch.parse_pointer(pointer) or [""])[0]
            unchanged = (
                head in IMMUTABLE
                and pointer == f"/{head}"
                and op["op"] == "replace"
                and op.get("value") == group.get(head)
            )
            if head not in EDITABLE and not unchanged:
                raise ApiError(400, "invalid_request", f"{pointer} cannot be changed")

    def delete_metric_group(
        self, request: Request, caller: Token, project_key: str, group_key: str
    ) -> Response:
        """deleteMetricGroup: refused while the group is connected to an experiment or an
        active guarded rollout."""
        project = self.rest._project(caller, project_key)
        self._group(project, group_key)
        usage = self._usage(project, group_key)
        if usage.connected:
            uses = [
                _count(usage.experiments, "experiment"),
                _count(usage.active_guarded_rollouts, "active guarded rollout"),
            ]
            raise ApiError(
                400,
                "invalid_request",
                f"Metric group is used by {' and '.join(u for u in uses if u)} and cannot "
                "be deleted",
            )
        del project.metric_groups[group_key]
        project.group_usage.pop(group_key, None)
        return Response(204, b"", None)
