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
- unknown body fields are ignored, as the API overview says.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from sandbox import jsonpatch
from sandbox.messages import ApiError, Request, Response, json_response
from sandbox.openapi import component_errors, load_spec
from sandbox.state import Account, Environment, Member, Project, SandboxState, Token, now_ms

METRICS_MAX_LIMIT = 50  # LaunchDarkly: getMetrics "Maximum limit is 50"
DEFAULT_LIMIT = 20
KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
ANALYSIS_TYPES = ("mean", "percentile")
FILTER_TYPES = ("group", "contextAttribute", "eventProperty")  # the Filter rep's enum
DEFAULT_DATA_SOURCE = {"key": "launchdarkly", "_name": "LaunchDarkly"}


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
        self, account: Account, project: Project, metric: dict[str, Any]
    ) -> dict[str, Any]:
        key = metric["key"]
        rep = {
            **metric,
            "_links": {
                "self": _link(f"/api/v2/metrics/{project.key}/{key}"),
                "parent": _link(f"/api/v2/metrics/{project.key}"),
            },
            "_site": {"href": f"/{project.key}/metrics/{key}/details", "type": "text/html"},
            "experimentCount": 0,
            "metricGroupCount": 0,
            "_attachedFlagCount": 0,
        }
        maintainer = account.members.get(metric.get("maintainerId", ""))
        if maintainer is not None:
            rep["_maintainer"] = {
                "_links": {"self": _link(f"/api/v2/members/{maintainer.id}")},
                "_id": maintainer.id,
                "firstName": maintainer.first_name,
                "lastName": maintainer.last_name,
                "role": maintainer.role,
                "email": maintainer.email,
            }
        return rep

    # --- identity -----------------------------------------------------------------------

    def get_caller_identity(self, request: Request, caller: Token) -> Response:
        """getCallerIdentity"""
        if caller.is_oauth:
            identity = {"authKind": "oauth", "tokenKind": "oauth", "clientId": caller.client_id}
            scopes = [caller.role]
        else:
            identity = {"authKind": "token", "tokenKind": "personal"}
            scopes = [caller.role, *caller.permissions]
        return json_response(
            200,
            {
                "accountId": caller.account_id,
                **identity,
                "tokenId": caller.id,
                "tokenName": caller.name,
                "memberId": caller.member_id,
                "serviceToken": False,
                "scopes": scopes,
            },
        )

    def get_member(self, request: Request, caller: Token, member_id: str) -> Response:
        """getMember (`me` is the token's member)"""
        account = self._account(caller)
        member = account.members.get(caller.member_id if member_id == "me" else member_id)
        if member is None:
            raise ApiError(404, "not_found", f"Unknown member {member_id}")
        return json_response(200, self._member_rep(member))

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

    # --- metrics ------------------------------------------------------------------------

    def get_metrics(self, request: Request, caller: Token, project_key: str) -> Response:
        """getMetrics"""
        project = self._project(caller, project_key)
        metrics = self._filter_metrics(
            list(project.metrics.values()), request.query.get("filter", "")
        )
        sort = request.query.get("sort", "createdAt")
        field = {"createdAt": "_creationDate", "name": "name"}.get(sort.lstrip("-"))
        if field is None:
            raise ApiError(400, "invalid_request", "sort must be createdAt or name")
        metrics.sort(key=lambda m: (m[field], m["key"]), reverse=sort.startswith("-"))
        base = f"/api/v2/metrics/{project.key}"
        page, links = _paginate(request, base, metrics, max_limit=METRICS_MAX_LIMIT)
        return json_response(
            200,
            {
                "items": [self._metric_rep(self._account(caller), project, m) for m in page],
                "_links": links,
                "totalCount": len(metrics),
            },
        )

    def _filter_metrics(self, metrics: list[dict], raw: str) -> list[dict]:
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
            else:
                raise ApiError(400, "invalid_request", f"unsupported filter {name}")
        return metrics

    def get_metric(
        self, request: Request, caller: Token, project_key: str, metric_key: str
    ) -> Response:
        """getMetric"""
        project = self._project(caller, project_key)
        return json_response(
            200,
            self._metric_rep(
                self._account(caller), project, self._metric(caller, project_key, metric_key)
            ),
        )

    def post_metric(self, request: Request, caller: Token, project_key: str) -> Response:
        """postMetric"""
        project = self._project(caller, project_key)
        body = _json_body(request)
        if not isinstance(body, dict):
            raise ApiError(400, "invalid_request", "body must be a MetricPost object")
        fields = {k: v for k, v in body.items() if k in self.metric_post_fields}
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
            "maintainerId": caller.member_id,
            "archived": False,
            "isActive": False,
        }
        if fields["kind"] == "custom":
            metric.update(
                unitAggregationType="average", analysisType="mean", randomizationUnits=["user"]
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
        if isinstance(body, dict) and "patch" in body:
            body = body["patch"]
        try:
            operations = jsonpatch.check_operations(body)
        except jsonpatch.PatchError as exc:
            raise ApiError(400, "invalid_request", str(exc)) from exc
        for op in operations:
            for pointer in (op["path"], op.get("from")):
                if pointer is None or op["op"] == "test":
                    continue
                head = (jsonpatch.parse_pointer(pointer) or [""])[0]
                if head.startswith("_") or head in ("key", ""):
                    raise ApiError(400, "invalid_request", f"{pointer} cannot be changed")
        try:
            patched = jsonpatch.apply_patch(metric, operations)
        except jsonpatch.PatchTestFailed as exc:
            raise ApiError(409, "optimistic_locking_error", str(exc)) from exc
        except jsonpatch.PatchError as exc:
            raise ApiError(400, "invalid_request", str(exc)) from exc
        fields = {k: v for k, v in patched.items() if k in self.metric_post_fields}
        self._validate_metric(caller, project, fields)
        patched.update(
            _version=metric["_version"] + 1,
            _versionId=str(uuid.uuid4()),
            lastModified={"date": _iso_now()},
        )
        project.metrics[metric_key] = patched
        return json_response(200, self._metric_rep(self._account(caller), project, patched))

    def delete_metric(
        self, request: Request, caller: Token, project_key: str, metric_key: str
    ) -> Response:
        """deleteMetric"""
        self._metric(caller, project_key, metric_key)
        del self._project(caller, project_key).metrics[metric_key]
        return Response(204, b"", None)

    def _validate_metric(self, caller: Token, project: Project, fields: dict[str, Any]) -> None:
        """MetricPost's schema, then the rules its field descriptions state in prose."""
        problems = component_errors("MetricPost", fields)
        if not problems:
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
        for unit in fields.get("randomizationUnits") or []:
            if unit not in project.context_kinds:
                problems.append(f"randomizationUnits: unknown context kind {unit}")
        default = fields.get("eventDefault") or {}
        if default.get("value", 0) != 0:
            problems.append("eventDefault.value: only 0 is supported")
        filters = fields.get("filters")
        if filters is not None and filters.get("type") not in FILTER_TYPES:
            problems.append(f"filters.type: must be one of {', '.join(FILTER_TYPES)}")
        maintainer = fields.get("maintainerId")
        if maintainer is not None and maintainer not in self._account(caller).members:
            problems.append(f"maintainerId: unknown member {maintainer}")
        return problems


def _json_body(request: Request) -> Any:
    if not request.header("Content-Type").startswith("application/json"):
        raise ApiError(400, "invalid_request", "Content-Type must be application/json")
    try:
        return request.json()
    except ValueError as exc:
        raise ApiError(400, "invalid_request", "body is not valid JSON") from exc


def _iso_now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")
