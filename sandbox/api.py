"""The `/api/v2` REST resources the connector uses, shaped by LaunchDarkly's OpenAPI spec.

Each handler names its `operationId`. Authentication, rate limits and the reader /
writer check happen before a handler runs (see `app.py`); handlers raise `ApiError`
for LaunchDarkly's error bodies. Every body returned here is valid against the
response schema in `spec/openapi.json` (the tests check each one).

Choices where LaunchDarkly's behaviour is not documented, made to be strict:
- `getMetrics` clamps `limit` above 50 to 50 (the spec documents no 400 for it);
- a duplicate metric key is 409 `conflict`; a failed JSON Patch `test` is 409
  `optimistic_locking_error` (the spec's example code for 409);
- a patch that is malformed or cannot apply is 400 `invalid_request` (the spec lists
  400, not 422, for patchMetric);
- unknown body fields are ignored, as the API overview says;
- `putExperimentationSettings` refuses a unit that is not a context kind of the project
  and more than one default (400 `invalid_request`); with no default the first unit
  becomes the default; an empty list is refused. Units dropped from the settings stay
  on the metrics that name them, and patchMetric checks only units a patch adds;
- archiving a metric in an active experiment, an active guarded rollout or a metric
  group is 400 `invalid_request` naming the use; deleting a metric that is not archived,
  or that an experiment or guarded rollout ever used, is 400 `invalid_request`
  (LaunchDarkly's docs say both are refused, not with which status or message);
  a patch may only touch MetricPost's fields (not `key` or `kind`) and `archived`: the
  rest (`archivedAt`, counts, ids, versions) is the server's, and a patch of it is 400;
- `hasConnections` counts metric groups as connections, besides experiments and
  guarded rollouts; archived metrics are listed by getMetrics, with `archived: true`;
- a metric's metric groups (`metricGroupCount`, the archive and delete refusals) are
  the sandbox's own groups that hold it (`sandbox/groups.py`) plus the count set with
  `/_sandbox/metric-usage`; deleting an archived metric that is in a group is 400
  `invalid_request` too;
- `filters` are checked as `sandbox/filters.py` says (contract rows FLT-*);
- a patch that loses a race (the `/_sandbox/races` control) is 409
  `optimistic_locking_error`, checked when the patch would be stored, so a patch that
  is invalid anyway still gets its 400;
- postMetric ignores `maintainerId` (LaunchDarkly sets the caller as maintainer; the
  Terraform provider sets another with a follow-up update); a service token's metrics
  have no maintainer;
- API tokens' caller identity carries no `scopes` (its meaning for them is not
  documented); getToken lets a token read itself whatever its role, and needs a writer
  to read another token of the account; a `no_access` token is not refused on read
  routes (the sandbox models built-in roles, not custom-role actions).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from sandbox import jsonpatch
from sandbox.filters import filter_problems
from sandbox.messages import ApiError, Request, Response, json_response
from sandbox.openapi import component_errors, load_spec
from sandbox.state import (
    Account,
    Environment,
    Member,
    MetricUsage,
    Project,
    SandboxState,
    Token,
    now_ms,
)

METRICS_MAX_LIMIT = 50  # LaunchDarkly: getMetrics "Maximum limit is 50"
DEFAULT_LIMIT = 20
KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
ANALYSIS_TYPES = ("mean", "percentile")
DEFAULT_DATA_SOURCE = {"key": "launchdarkly", "_name": "LaunchDarkly"}
DEFAULT_API_VERSION = 20240415
RACE_MESSAGE = "Conflict: the metric was changed by another request; re-read it and retry"
METRIC_USED_IN = ("experiments", "guarded_rollouts", "any", "none")


def _link(href: str) -> dict[str, str]:
    return {"href": href, "type": "application/json"}


def _int_param(request: Request, name: str, default: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()):
        raise ApiError(400, "invalid_request", f"{name} must be a non-negative integer")
    return int(raw)


def _paginate(
    request: Request, base: str, items: list, *, max_limit: int | None = None
) -> tuple[list, dict[str, dict[str, str]]]:
    """A page of `items` and LaunchDarkly's `_links`: first/prev absent on the first
    page, next absent on the last, hrefs relative to the host."""
    limit = _int_param(request, "limit", DEFAULT_LIMIT) or DEFAULT_LIMIT
    if max_limit is not None:
        limit = min(limit, max_limit)
    offset = _int_param(request, "offset", 0)
    kept = {k: v for k, v in request.query.items() if k not in ("limit", "offset")}

    def href(at: int) -> str:
        return f"{base}?{urlencode({**kept, 'limit': limit, 'offset': at})}"

    total = len(items)
    last = max(0, (total - 1) // limit * limit)
    links = {"self": _link(href(offset)), "last": _link(href(last))}
    if offset > 0:
        links["first"] = _link(href(0))
        links["prev"] = _link(href(max(0, offset - limit)))
    if offset + limit < total:
        links["next"] = _link(href(offset + limit))
    return items[offset : offset + limit], links


def _split_filter(raw: str) -> list[str]:
    """Split `a:b,c anyOf [x,y]` on the commas outside brackets."""
    terms, depth, current = [], 0, ""
    for char in raw:
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == "," and depth == 0:
            terms.append(current.strip())
            current = ""
        else:
            current += char
    terms.append(current.strip())
    return [term for term in terms if term]


def _parse_filter(raw: str) -> list[tuple[str, str, list[str]]]:
    """Terms as (field, operator, values): `field:v1+v2` or `field anyOf [v1,v2]`."""
    parsed = []
    for term in _split_filter(raw):
        match = re.fullmatch(r"(\w+)\s+(\w+)\s+\[(.*)\]", term) or re.fullmatch(
            r"(\w+)\s+(\w+)\s+(.*)", term
        )
        if match:
            name, op, rest = match.groups()
            values = [v.strip().strip("\"'") for v in rest.split(",") if v.strip()]
        elif ":" in term:
            name, _, rest = term.partition(":")
            op, values = "equals", [v for v in rest.split("+") if v]
            if name == "keys":
                values = [v for v in rest.split("|") if v]
        else:
            raise ApiError(400, "invalid_request", f"cannot parse filter term {term!r}")
        parsed.append((name.strip(), op, values))
    return parsed


class RestApi:
    def __init__(self, state: SandboxState) -> None:
        self.state = state
        spec = load_spec()["components"]["schemas"]["MetricPost"]
        self.metric_post_fields = tuple(spec["properties"])
        self.metric_patch_fields = {
            *(name for name in self.metric_post_fields if name not in ("key", "kind")),
            "archived",
        }

    # --- lookups ---------------------------------------------------------------------

    def _account(self, caller: Token) -> Account:
        return self.state.accounts[caller.account_id]

    def _project(self, caller: Token, project_key: str) -> Project:
        project = self._account(caller).projects.get(project_key)
        if project is None:
            raise ApiError(404, "not_found", f"Unknown project key {project_key}")
        return project

    def _metric(self, caller: Token, project_key: str, metric_key: str) -> dict[str, Any]:
        metric = self._project(caller, project_key).metrics.get(metric_key)
        if metric is None:
            raise ApiError(404, "not_found", f"Unknown metric key {metric_key}")
        return metric

    # --- representations --------------------------------------------------------------

    def _member_summary(self, member: Member) -> dict[str, Any]:
        """MemberSummary, as in a metric's `_maintainer` and a token's `_member`."""
        return {
            "_links": {"self": _link(f"/api/v2/members/{member.id}")},
            "_id": member.id,
            "firstName": member.first_name,
            "lastName": member.last_name,
            "role": member.role,
            "email": member.email,
        }

    def _member_rep(self, member: Member) -> dict[str, Any]:
        return {
            "_links": {"self": _link(f"/api/v2/members/{member.id}")},
            "_id": member.id,
            "firstName": member.first_name,
            "lastName": member.last_name,
            "role": member.role,
            "email": member.email,
            "_pendingInvite": False,
            "_verified": True,
            "customRoles": [],
            "mfa": "disabled",
            "_lastSeen": now_ms(),
            "creationDate": member.created,
        }

    def _environment_rep(self, project: Project, env: Environment) -> dict[str, Any]:
        return {
            "_links": {"self": _link(f"/api/v2/projects/{project.key}/environments/{env.key}")},
            "_id": env.id,
            "key": env.key,
            "name": env.name,
            "apiKey": env.sdk_key,
            "mobileKey": env.mobile_key,
            "color": env.color,
            "defaultTtl": 0,
            "secureMode": False,
            "defaultTrackEvents": False,
            "requireComments": False,
            "confirmChanges": False,
            "tags": [],
            "critical": env.critical,
        }

    def _environments_rep(self, request: Request | None, project: Project) -> dict[str, Any]:
        base = f"/api/v2/projects/{project.key}/environments"
        envs = list(project.environments.values())
        if request is not None:
            if "filter" in request.query:
                for name, _, values in _parse_filter(request.query["filter"]):
                    if name != "query":
                        raise ApiError(400, "invalid_request", f"unsupported filter {name}")
                    needle = " ".join(values).lower()
                    envs = [e for e in envs if needle in e.key.lower() or needle in e.name.lower()]
            page, links = _paginate(request, base, envs)
        else:
            page, links = envs, {"self": _link(base)}
        return {
            "_links": links,
            "totalCount": len(envs),
            "items": [self._environment_rep(project, env) for env in page],
        }

    def _project_rep(self, project: Project, expand: str) -> dict[str, Any]:
        rep: dict[str, Any] = {
            "_links": {
                "self": _link(f"/api/v2/projects/{project.key}"),
                "environments": _link(f"/api/v2/projects/{project.key}/environments"),
            },
            "_id": project.id,
            "key": project.key,
            "includeInSnippetByDefault": False,
            "defaultClientSideAvailability": {"usingMobileKey": False, "usingEnvironmentId": False},
            "name": project.name,
            "tags": [],
        }
        if "environments" in expand.split(","):
            rep["environments"] = self._environments_rep(None, project)
        return rep

    def _metric_rep(
        self,
        account: Account,
        project: Project,
        metric: dict[str, Any],
        expand: frozenset[str] = frozenset(),
    ) -> dict[str, Any]:
        """MetricRep / MetricListingRep; the counts LaunchDarkly makes expandable appear
        only when `expand` names them, the active counts always."""
        key = metric["key"]
        usage = project.metric_usage(key)
        rep = {
            **metric,
            "_links": {
                "self": _link(f"/api/v2/metrics/{project.key}/{key}"),
                "parent": _link(f"/api/v2/metrics/{project.key}"),
            },
            "_site": {"href": f"/{project.key}/metrics/{key}/details", "type": "text/html"},
            "activeExperimentCount": usage.active_experiments,
            "activeGuardedRolloutCount": usage.active_guarded_rollouts,
            "_attachedFlagCount": 0,
        }
        if "experimentCount" in expand:
            rep["experimentCount"] = usage.experiments
        if "metricGroupCount" in expand:
            rep["metricGroupCount"] = usage.metric_groups
        if "metricGroups" in expand:
            # Only the sandbox's own groups: those /_sandbox/metric-usage counts are not
            # groups anyone could name.
            rep["metricGroups"] = [
                {
                    "key": group["key"],
                    "name": group["name"],
                    "kind": group["kind"],
                    "_links": {
                        "self": _link(
                            f"/api/v2/projects/{project.key}/metric-groups/{group['key']}"
                        ),
                        "parent": _link(f"/api/v2/projects/{project.key}"),
                    },
                }
                for group in project.groups_with_metric(key)
            ]
        maintainer = account.members.get(metric.get("maintainerId", ""))
        if maintainer is not None:
            rep["_maintainer"] = self._member_summary(maintainer)
        return rep

    def _token_rep(self, account: Account, token: Token) -> dict[str, Any]:
        """The `Token` schema; only the secret's last four characters, as LaunchDarkly
        shows it after creation."""
        creator = account.members[token.creator_id]
        return {
            "_id": token.id,
            "ownerId": account.owner.id,
            "memberId": creator.id,
            "_member": self._member_summary(creator),
            "name": token.name,
            "description": "",
            "creationDate": token.created,
            "lastModified": token.created,
            "customRoleIds": [],
            "inlineRole": [dict(statement) for statement in token.inline_role],
            "role": token.role,
            "token": token.secret[-4:],
            "serviceToken": token.service,
            "defaultApiVersion": DEFAULT_API_VERSION,
            "_links": {
                "self": _link(f"/api/v2/tokens/{token.id}"),
                "parent": _link("/api/v2/tokens"),
            },
        }

    # --- identity -----------------------------------------------------------------------

    def get_caller_identity(self, request: Request, caller: Token) -> Response:
        """getCallerIdentity"""
        identity: dict[str, Any] = {"accountId": caller.account_id}
        if caller.is_oauth:
            identity.update(authKind="oauth", tokenKind="oauth", clientId=caller.client_id)
        else:
            kind = "service" if caller.service else "personal"
            identity.update(authKind="token", tokenKind=kind)
        identity.update(tokenId=caller.id, tokenName=caller.name)
        if caller.member_id is not None:
            identity["memberId"] = caller.member_id
        identity["serviceToken"] = caller.service
        if caller.is_oauth:
            # The OAuth grant's scope. API tokens get no `scopes`: what it would mean for
            # them is undocumented, and a client must not read a role out of it.
            identity["scopes"] = [caller.role]
        return json_response(200, identity)

    def get_member(self, request: Request, caller: Token, member_id: str) -> Response:
        """getMember (`me` is the token's member; a service token has none)"""
        account = self._account(caller)
        wanted = caller.member_id if member_id == "me" else member_id
        member = account.members.get(wanted) if wanted is not None else None
        if member is None:
            raise ApiError(404, "not_found", f"Unknown member {member_id}")
        return json_response(200, self._member_rep(member))

    def get_token(self, request: Request, caller: Token, token_id: str) -> Response:
        """getToken: a token reads itself; reading another token of the account takes a
        writer. Another account's token answers like a missing one."""
        found = next(
            (
                t
                for t in self.state.tokens.values()
                if t.id == token_id
                and t.account_id == caller.account_id
                and not t.is_oauth
                and not t.revoked
            ),
            None,
        )
        if found is None:
            raise ApiError(404, "not_found", f"Unknown token {token_id}")
        if found.id != caller.id and caller.role != "writer":
            raise ApiError(
                403, "forbidden", "Forbidden. Access to the requested resource was denied."
            )
        return json_response(200, self._token_rep(self._account(caller), found))

    # --- projects, environments, context kinds -----------------------------------------

    def get_projects(self, request: Request, caller: Token) -> Response:
        """getProjects"""
        projects = list(self._account(caller).projects.values())
        for name, _, values in _parse_filter(request.query.get("filter", "")):
            if name == "query":
                needle = " ".join(values).lower()
                projects = [
                    p for p in projects if needle in p.key.lower() or needle in p.name.lower()
                ]
            elif name == "keys":
                projects = [p for p in projects if p.key in values]
            elif name == "tags":
                projects = [] if values else projects  # seeded projects have no tags
            else:
                raise ApiError(400, "invalid_request", f"unsupported filter {name}")
        sort = request.query.get("sort", "")
        if sort.lstrip("-") == "name":
            projects.sort(key=lambda p: p.name.lower(), reverse=sort.startswith("-"))
        elif sort.startswith("-"):
            projects.reverse()
        page, links = _paginate(request, "/api/v2/projects", projects)
        expand = request.query.get("expand", "")
        return json_response(
            200,
            {
                "_links": links,
                "items": [self._project_rep(p, expand) for p in page],
                "totalCount": len(projects),
            },
        )

    def get_project(self, request: Request, caller: Token, project_key: str) -> Response:
        """getProject"""
        project = self._project(caller, project_key)
        return json_response(200, self._project_rep(project, request.query.get("expand", "")))

    def get_environments_by_project(
        self, request: Request, caller: Token, project_key: str
    ) -> Response:
        """getEnvironmentsByProject"""
        project = self._project(caller, project_key)
        return json_response(200, self._environments_rep(request, project))

    def get_context_kinds_by_project_key(
        self, request: Request, caller: Token, project_key: str
    ) -> Response:
        """getContextKindsByProjectKey"""
        project = self._project(caller, project_key)
        items = [
            {
                "key": kind.key,
                "name": kind.name,
                "description": "",
                "version": 1,
                "creationDate": kind.created,
                "lastModified": kind.created,
                "createdFrom": kind.created_from,
                "hideInTargeting": False,
                "archived": False,
                "_links": {
                    "self": _link(f"/api/v2/projects/{project.key}/context-kinds/{kind.key}")
                },
            }
            for kind in project.context_kinds.values()
        ]
        links = {"self": _link(f"/api/v2/projects/{project.key}/context-kinds")}
        return json_response(200, {"items": items, "_links": links})

    # --- experimentation settings ---------------------------------------------------------

    def _settings_rep(self, project: Project) -> dict[str, Any]:
        return {
            "_projectId": project.id,
            "_projectKey": project.key,
            "randomizationUnits": [dict(unit) for unit in project.randomization_units],
            "_creationDate": project.created,
            "_links": {
                "self": _link(f"/api/v2/projects/{project.key}/experimentation-settings"),
                "project": _link(f"/api/v2/projects/{project.key}"),
            },
        }

    def get_experimentation_settings(
        self, request: Request, caller: Token, project_key: str
    ) -> Response:
        """getExperimentationSettings"""
        return json_response(200, self._settings_rep(self._project(caller, project_key)))

    def put_experimentation_settings(
        self, request: Request, caller: Token, project_key: str
    ) -> Response:
        """putExperimentationSettings: replaces the registered randomization units."""
        project = self._project(caller, project_key)
        body = _json_body(request)
        problems = component_errors("RandomizationSettingsPut", body)
        if problems:
            raise ApiError(400, "invalid_request", "; ".join(problems))
        units: list[dict[str, Any]] = []
        for given in body["randomizationUnits"]:
            key = given["randomizationUnit"]
            kind = project.context_kinds.get(key)
            if kind is None:
                raise ApiError(
                    400, "invalid_request", f"Randomization unit {key} is not a context kind"
                )
            if any(unit["randomizationUnit"] == key for unit in units):
                raise ApiError(400, "invalid_request", f"Randomization unit {key} is listed twice")
            units.append(
                {
                    "randomizationUnit": key,
                    "default": bool(given.get("default")),
                    "_hidden": False,
                    "_displayName": kind.name,
                }
            )
        if not units:
            raise ApiError(400, "invalid_request", "At least one randomization unit is required")
        defaults = sum(unit["default"] for unit in units)
        if defaults > 1:
            raise ApiError(
                400, "invalid_request", "A project can only have one default randomization unit"
            )
        if not defaults:
            units[0]["default"] = True
        project.randomization_units = units
        return json_response(200, self._settings_rep(project))

    # --- metrics ------------------------------------------------------------------------

    def get_metrics(self, request: Request, caller: Token, project_key: str) -> Response:
        """getMetrics"""
        project = self._project(caller, project_key)
        metrics = self._filter_metrics(
            project, list(project.metrics.values()), request.query.get("filter", "")
        )
        sort = request.query.get("sort", "createdAt")
        field = {"createdAt": "_creationDate", "name": "name"}.get(sort.lstrip("-"))
        if field is None:
            raise ApiError(400, "invalid_request", "sort must be createdAt or name")
        metrics.sort(key=lambda m: (m[field], m["key"]), reverse=sort.startswith("-"))
        base = f"/api/v2/metrics/{project.key}"
        page, links = _paginate(request, base, metrics, max_limit=METRICS_MAX_LIMIT)
        # LaunchDarkly: getMetrics expands only `experimentCount`.
        expand = _expand(request) & {"experimentCount"}
        account = self._account(caller)
        return json_response(
            200,
            {
                "items": [self._metric_rep(account, project, m, expand) for m in page],
                "_links": links,
                "totalCount": len(metrics),
            },
        )

    def _filter_metrics(self, project: Project, metrics: list[dict], raw: str) -> list[dict]:
        def usage(metric: dict) -> MetricUsage:
            return project.metric_usage(metric["key"])

        for name, op, values in _parse_filter(raw):
            if name == "query":
                needle = " ".join(values).lower()
                metrics = [
                    m for m in metrics if needle in m["key"].lower() or needle in m["name"].lower()
                ]
            elif name == "tags":
                wanted = set(values)
                match_any = op.lower() == "anyof"
                metrics = [
                    m
                    for m in metrics
                    if (wanted & set(m["tags"]) if match_any else wanted <= set(m["tags"]))
                ]
            elif name == "eventKind":
                metrics = [m for m in metrics if m["kind"] in values]
            elif name == "isNumeric":
                wanted_numeric = values[:1] == ["true"]
                metrics = [m for m in metrics if bool(m.get("isNumeric")) == wanted_numeric]
            elif name == "unitAggregationType":
                metrics = [m for m in metrics if m.get("unitAggregationType") in values]
            elif name == "eventKeys":
                metrics = [m for m in metrics if m.get("eventKey") in values]
            elif name == "maintainerIds":
                metrics = [m for m in metrics if m.get("maintainerId") in values]
            elif name == "hasConnections":
                if values not in (["true"], ["false"]):
                    raise ApiError(400, "invalid_request", "hasConnections: true or false")
                wanted_connected = values == ["true"]
                metrics = [m for m in metrics if usage(m).connected == wanted_connected]
            elif name == "metricUsedIn":
                if len(values) != 1 or values[0] not in METRIC_USED_IN:
                    choices = ", ".join(METRIC_USED_IN)
                    raise ApiError(400, "invalid_request", f"metricUsedIn: one of {choices}")
                metrics = [m for m in metrics if _used_in(usage(m), values[0])]
            else:
                raise ApiError(400, "invalid_request", f"unsupported filter {name}")
        return metrics

    def get_metric(
        self, request: Request, caller: Token, project_key: str, metric_key: str
    ) -> Response:
        """getMetric"""
        project = self._project(caller, project_key)
        metric = self._metric(caller, project_key, metric_key)
        expand = _expand(request)
        return json_response(200, self._metric_rep(self._account(caller), project, metric, expand))

    def post_metric(self, request: Request, caller: Token, project_key: str) -> Response:
        """postMetric"""
        project = self._project(caller, project_key)
        body = _json_body(request)
        if not isinstance(body, dict):
            raise ApiError(400, "invalid_request", "body must be a MetricPost object")
        # LaunchDarkly ignores maintainerId on create: the caller maintains the metric.
        fields = {
            k: v for k, v in body.items() if k in self.metric_post_fields and k != "maintainerId"
        }
        self._validate_metric(caller, project, fields)
        if fields["key"] in project.metrics:
            raise ApiError(409, "conflict", f"A metric with key {fields['key']} already exists")
        metric = {
            "_id": uuid.uuid4().hex[:24],
            "_versionId": str(uuid.uuid4()),
            "_version": 1,
            "_creationDate": now_ms(),
            "lastModified": {"date": _iso_now()},
            "name": fields["key"],
            "tags": [],
            "dataSource": dict(DEFAULT_DATA_SOURCE),
            "archived": False,
            "isActive": False,
        }
        if caller.member_id is not None:  # a service token acts as no member
            metric["maintainerId"] = caller.member_id
        if fields["kind"] == "custom":
            metric.update(
                unitAggregationType="average",
                analysisType="mean",
                randomizationUnits=[project.default_randomization_unit()],
            )
        metric.update(fields)
        project.metrics[metric["key"]] = metric
        return json_response(201, self._metric_rep(self._account(caller), project, metric))

    def patch_metric(
        self, request: Request, caller: Token, project_key: str, metric_key: str
    ) -> Response:
        """patchMetric (RFC 6902 JSON Patch, optionally wrapped as {comment, patch})"""
        project = self._project(caller, project_key)
        metric = self._metric(caller, project_key, metric_key)
        body = _json_body(request)
        try:
            operations = jsonpatch.operations_of_body(body)
        except jsonpatch.PatchError as exc:
            raise ApiError(400, "invalid_request", str(exc)) from exc
        for op in operations:
            for pointer in (op["path"], op.get("from")):
                if pointer is None or op["op"] == "test":
                    continue
                head = (jsonpatch.parse_pointer(pointer) or [""])[0]
                # LaunchDarkly: a metric's kind and key cannot be edited. The Terraform
                # provider's updates replace /kind with the value it already has, so
                # that is accepted as the no-op it is; a change is refused.
                unchanged = (
                    head in ("kind", "key")
                    and pointer == f"/{head}"
                    and op["op"] == "replace"
                    and op.get("value") == metric.get(head)
                )
                # Everything the server keeps (ids, versions, archivedAt, usage counts)
                # is not editable either.
                if head not in self.metric_patch_fields and not unchanged:
                    raise ApiError(400, "invalid_request", f"{pointer} cannot be changed")
        try:
            patched = jsonpatch.apply_patch(metric, operations)
        except jsonpatch.PatchTestFailed as exc:
            raise ApiError(409, "optimistic_locking_error", str(exc)) from exc
        except jsonpatch.PatchError as exc:
            raise ApiError(400, "invalid_request", str(exc)) from exc
        fields = {k: v for k, v in patched.items() if k in self.metric_post_fields}
        self._validate_metric(caller, project, fields, metric.get("randomizationUnits") or [])
        self._apply_archive(project, metric, patched)
        if project.races.get(metric_key):
            self._lose_race(project, metric)
            raise ApiError(409, "optimistic_locking_error", RACE_MESSAGE)
        patched.update(
            _version=metric["_version"] + 1,
            _versionId=str(uuid.uuid4()),
            lastModified={"date": _iso_now()},
        )
        project.metrics[metric_key] = patched
        return json_response(200, self._metric_rep(self._account(caller), project, patched))

    def _apply_archive(
        self, project: Project, metric: dict[str, Any], patched: dict[str, Any]
    ) -> None:
        """`/archived` true archives (refused while the metric is in use), false restores."""
        archived = patched.get("archived", False)
        if not isinstance(archived, bool):
            raise ApiError(400, "invalid_request", "archived: must be true or false")
        if archived == metric.get("archived", False):
            return
        if not archived:
            patched.pop("archivedAt", None)
            return
        usage = project.metric_usage(metric["key"])
        uses = [
            _count(usage.active_experiments, "active experiment"),
            _count(usage.active_guarded_rollouts, "active guarded rollout"),
            _count(usage.metric_groups, "metric group"),
        ]
        in_use = [use for use in uses if use]
        if in_use:
            raise ApiError(
                400,
                "invalid_request",
                f"Metric is in use by {' and '.join(in_use)} and cannot be archived",
            )
        patched["archivedAt"] = now_ms()

    def _lose_race(self, project: Project, metric: dict[str, Any]) -> None:
        """Someone else's edit lands first: the caller's copy of the metric is now stale."""
        project.races[metric["key"]] -= 1
        metric.update(
            name=f"{metric['name']} (edited concurrently)",
            _version=metric["_version"] + 1,
            _versionId=str(uuid.uuid4()),
            lastModified={"date": _iso_now()},
        )

    def delete_metric(
        self, request: Request, caller: Token, project_key: str, metric_key: str
    ) -> Response:
        """deleteMetric: only an archived metric that no experiment or guarded rollout
        ever used (LaunchDarkly recommends archiving instead)."""
        project = self._project(caller, project_key)
        metric = self._metric(caller, project_key, metric_key)
        if not metric.get("archived"):
            raise ApiError(
                400,
                "invalid_request",
                "Only archived metrics can be deleted; archive the metric first",
            )
        usage = project.metric_usage(metric_key)
        if usage.experiments or usage.guarded_rollouts:
            raise ApiError(
                400,
                "invalid_request",
                "Metric was used in an experiment or guarded rollout and cannot be deleted; "
                "archive it instead",
            )
        if usage.metric_groups:
            raise ApiError(
                400,
                "invalid_request",
                f"Metric is in {_count(usage.metric_groups, 'metric group')} and cannot be "
                "deleted; remove it from the group first",
            )
        del project.metrics[metric_key]
        project.usage.pop(metric_key, None)
        project.races.pop(metric_key, None)
        return Response(204, b"", None)

    def _validate_metric(
        self,
        caller: Token,
        project: Project,
        fields: dict[str, Any],
        kept_units: Sequence[str] = (),
    ) -> None:
        """MetricPost's schema, the project's registered randomization units (but not
        `kept_units`, those the metric had before a patch), then the rules MetricPost's
        field descriptions state in prose."""
        problems = component_errors("MetricPost", fields)
        if problems:
            raise ApiError(400, "invalid_request", "; ".join(problems))
        registered = {unit["randomizationUnit"] for unit in project.randomization_units}
        for unit in fields.get("randomizationUnits") or []:
            if unit not in registered and unit not in kept_units:
                # LaunchDarkly's message (launchdarkly-labs/statsig-to-ld).
                message = f'Randomization unit "{unit}" not found in project settings'
                raise ApiError(400, "invalid_request", message)
        problems = self._metric_rules(caller, project, fields)
        if problems:
            raise ApiError(400, "invalid_request", "; ".join(problems))

    def _metric_rules(self, caller: Token, project: Project, fields: dict[str, Any]) -> list[str]:
        problems = []

        def need(name: str, why: str) -> None:
            if fields.get(name) in (None, "", []):
                problems.append(f"{name}: required {why}")

        if not KEY_PATTERN.match(fields["key"]):
            problems.append("key: letters, digits, '.', '_' and '-' only")
        kind = fields["kind"]
        if kind == "custom":
            need("eventKey", "for custom metrics")
            if "isNumeric" not in fields:
                problems.append("isNumeric: required for custom metrics")
            if fields.get("isNumeric"):
                need("unit", "for numeric metrics")
                need("successCriteria", "for numeric metrics")
        else:
            need("urls", f"for {kind} metrics")
            if kind == "click":
                need("selector", "for click metrics")
        analysis = fields.get("analysisType")
        if analysis is not None and analysis not in ANALYSIS_TYPES:
            problems.append(f"analysisType: must be one of {', '.join(ANALYSIS_TYPES)}")
        percentile = fields.get("percentileValue")
        if analysis == "percentile" and percentile is None:
            problems.append("percentileValue: required when analysisType is percentile")
        if percentile is not None and not 0 <= percentile <= 100:
            problems.append("percentileValue: must be between 0 and 100")
        default = fields.get("eventDefault") or {}
        if default.get("value", 0) != 0:
            problems.append("eventDefault.value: only 0 is supported")
        filters = fields.get("filters")
        if filters is not None:
            if kind != "custom":
                problems.append("filters: only supported for custom metrics")
            else:
                problems.extend(filter_problems(filters))
        maintainer = fields.get("maintainerId")
        if maintainer is not None and maintainer not in self._account(caller).members:
            problems.append(f"maintainerId: unknown member {maintainer}")
        return problems


def _expand(request: Request) -> frozenset[str]:
    return frozenset(part.strip() for part in request.query.get("expand", "").split(","))


def _used_in(usage: MetricUsage, where: str) -> bool:
    """getMetrics' `metricUsedIn` filter: experiments, guarded_rollouts, any or none."""
    experiments, rollouts = usage.experiments > 0, usage.guarded_rollouts > 0
    return {
        "experiments": experiments,
        "guarded_rollouts": rollouts,
        "any": experiments or rollouts,
        "none": not (experiments or rollouts),
    }[where]


def _count(number: int, noun: str) -> str:
    if not number:
        return ""
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _json_body(request: Request) -> Any:
    if not request.header("Content-Type").startswith("application/json"):
        raise ApiError(400, "invalid_request", "Content-Type must be application/json")
    try:
        return request.json()
    except ValueError as exc:
        raise ApiError(400, "invalid_request", "body is not valid JSON") from exc


def _iso_now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")
