"""The `/_sandbox/` control surface (DESIGN.md's table): JSON in, JSON out.

Besides it, a few HTML pages for people: the overview (`GET /_sandbox/`), a form there
that mints an API access token (`POST /_sandbox/tokens/new`, form-encoded), and a
metric's page at its `_site` link (`GET /{projectKey}/metrics/{metricKey}/details`).

Tests and `make run` use it to mint tokens, register OAuth clients, set limits and
faults, say how many experiments, guarded rollouts and metric groups use a metric
(`/_sandbox/metric-usage`: those live outside the sandbox) and how many experiments
and guarded rollouts use a metric group (`/_sandbox/metric-group-usage`), make the next
patches of a metric lose a race (`/_sandbox/races`), read the request log and event counts, and
reset. It is never rate limited, faulted, delayed or logged, so controlling the sandbox
cannot disturb what is measured.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sandbox import pages
from sandbox.faults import parse_faults
from sandbox.messages import (
    ApiError,
    Request,
    Response,
    html_response,
    json_response,
    redirect,
)
from sandbox.state import Account, Limits, MetricGroupUsage, MetricUsage, OAuthClient, Project

if TYPE_CHECKING:
    from sandbox.app import SandboxApp

# `no_access`: a token that can do only what its inline role allows (say, importEventData).
ROLES = ("reader", "writer", "no_access")
FORM_ROLES = ("reader", "writer")
# PUT /_sandbox/metric-usage keys, named as MetricUsage's fields
USAGE_FIELDS = tuple(MetricUsage.__dataclass_fields__)
# PUT /_sandbox/metric-group-usage keys, named as MetricGroupUsage's fields
GROUP_USAGE_FIELDS = tuple(MetricGroupUsage.__dataclass_fields__)


def _object(request: Request) -> dict[str, Any]:
    try:
        body = request.json() if request.body else {}
    except ValueError as exc:
        raise ApiError(400, "invalid_request", "body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_request", "body must be a JSON object")
    return body


def _string(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ApiError(400, "invalid_request", f"{name}: a non-empty string is required")
    return value


def _count(body: dict[str, Any], name: str, default: int) -> int:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ApiError(400, "invalid_request", f"{name}: a non-negative integer")
    return value


def _statements(value: Any) -> list[dict[str, Any]]:
    """An inline role: policy statements {effect, actions, resources}."""
    if not isinstance(value, list) or not all(
        isinstance(s, dict)
        and s.get("effect") in ("allow", "deny")
        and isinstance(s.get("actions", []), list)
        and isinstance(s.get("resources", []), list)
        for s in value
    ):
        raise ApiError(
            400, "invalid_request", "inline_role: a list of {effect, actions, resources} statements"
        )
    return value


class Control:
    def __init__(self, app: SandboxApp) -> None:
        self.app = app
        self.state = app.state
        self.routes = {
            ("GET", "/_sandbox"): self.overview,
            ("GET", "/_sandbox/"): self.overview,
            ("GET", "/_sandbox/state"): self.get_state,
            ("POST", "/_sandbox/accounts"): self.create_account,
            ("POST", "/_sandbox/tokens"): self.create_token,
            ("POST", "/_sandbox/tokens/revoke"): self.revoke_token,
            ("GET", "/_sandbox/tokens/new"): self.token_form,
            ("POST", "/_sandbox/tokens/new"): self.create_token_from_form,
            ("POST", "/_sandbox/oauth-clients"): self.register_client,
            ("PUT", "/_sandbox/limits"): self.set_limits,
            ("PUT", "/_sandbox/faults"): self.set_faults,
            ("PUT", "/_sandbox/metric-usage"): self.set_metric_usage,
            ("PUT", "/_sandbox/metric-group-usage"): self.set_metric_group_usage,
            ("PUT", "/_sandbox/races"): self.set_races,
            ("GET", "/_sandbox/requests"): self.get_requests,
            ("GET", "/_sandbox/events"): self.get_events,
            ("POST", "/_sandbox/reset"): self.reset,
        }

    def handle(self, request: Request) -> Response:
        handler = self.routes.get((request.method, request.path))
        if handler is None:
            if any(path == request.path for _, path in self.routes):
                return ApiError(405, "method_not_allowed", "Method not allowed").response()
            return ApiError(404, "not_found", f"No sandbox control at {request.path}").response()
        try:
            with self.state.lock:
                return handler(request)
        except ApiError as error:
            return error.response()

    # --- reads ---------------------------------------------------------------------

    def overview(self, request: Request) -> Response:
        accounts = list(self.state.accounts.values())
        return html_response(
            200, pages.overview_page(accounts, list(self.state.oauth_clients.values()))
        )

    def metric_details(self, request: Request, project_key: str, metric_key: str) -> Response:
        """A metric's page (its `_site` link); every account's metric under that key."""
        if request.method != "GET":
            return html_response(
                405, pages.message_page("Method not allowed", "This page only answers GET.")
            )
        with self.state.lock:
            found = [
                (account, project)
                for account in self.state.accounts.values()
                if (project := account.projects.get(project_key)) is not None
                and metric_key in project.metrics
            ]
            if not found:
                message = f"No metric {metric_key} in project {project_key}."
                return html_response(404, pages.message_page("Metric not found", message))
            return html_response(200, pages.metric_page(project_key, metric_key, found))

    def _account_state(self, account: Account) -> dict[str, Any]:
        return {
            "id": account.id,
            "name": account.name,
            "members": [
                {"id": m.id, "email": m.email, "password": m.password, "role": m.role}
                for m in account.members.values()
            ],
            "projects": [
                {
                    "key": p.key,
                    "name": p.name,
                    "environments": [
                        {"key": e.key, "name": e.name, "id": e.id} for e in p.environments.values()
                    ],
                    "context_kinds": list(p.context_kinds),
                    "metrics": list(p.metrics.values()),
                    "metric_groups": [
                        {**group, "usage": vars(p.group_usage.get(key, MetricGroupUsage()))}
                        for key, group in p.metric_groups.items()
                    ],
                }
                for p in account.projects.values()
            ],
        }

    def get_state(self, request: Request) -> Response:
        limits = self.state.limits
        faults = self.state.faults
        return json_response(
            200,
            {
                "demo_account_id": self.state.demo_account.id,
                "accounts": [self._account_state(a) for a in self.state.accounts.values()],
                "oauth_clients": [
                    {
                        "client_id": c.client_id,
                        "client_secret": c.client_secret,
                        "redirect_uri": c.redirect_uri,
                        "name": c.name,
                    }
                    for c in self.state.oauth_clients.values()
                ],
                "limits": {
                    "global_per_10s": limits.global_per_window,
                    "route_per_10s": limits.route_per_window,
                    "retry_after_mode": limits.retry_after_mode,
                    "window_s": self.app.limiter.window_s,
                },
                "faults": {
                    "rate": faults.rate,
                    "kinds": list(faults.kinds),
                    "routes": list(faults.routes),
                    "latency_ms": faults.latency_ms,
                    "slow_ms": faults.slow_ms,
                },
            },
        )

    def get_requests(self, request: Request) -> Response:
        since = request.query.get("since", "0")
        if not (since.isascii() and since.isdigit()):
            raise ApiError(400, "invalid_request", "since: a non-negative integer")
        entries = [dict(e) for e in self.state.requests if e["seq"] > int(since)]
        return json_response(200, {"requests": entries, "last_seq": self.state.request_seq})

    def get_events(self, request: Request) -> Response:
        """Imported events counted per key, those accepted but dropped (by reason), and
        payload ids seen; see `EventImport.report`."""
        return json_response(200, self.app.events.report())

    # --- writes --------------------------------------------------------------------

    def create_account(self, request: Request) -> Response:
        account = self.state.create_account(_string(_object(request), "name"))
        token = self.state.mint_token(account, role="writer", name="sandbox writer")
        member = account.owner
        return json_response(
            201,
            {
                "id": account.id,
                "name": account.name,
                "token": token.secret,
                "token_id": token.id,
                "member": {"id": member.id, "email": member.email, "password": member.password},
            },
        )

    def create_token(self, request: Request) -> Response:
        body = _object(request)
        account_id = body.get("account_id") or self.state.demo_account.id
        account = self.state.accounts.get(account_id)
        if account is None:
            raise ApiError(404, "not_found", f"Unknown account {account_id}")
        role = body.get("role", "writer")
        if role not in ROLES:
            raise ApiError(400, "invalid_request", f"role: one of {', '.join(ROLES)}")
        permissions = body.get("permissions") or []
        if not isinstance(permissions, list) or not all(isinstance(p, str) for p in permissions):
            raise ApiError(400, "invalid_request", "permissions: a list of strings")
        inline_role = _statements(body.get("inline_role") or [])
        service = body.get("service", False)
        if not isinstance(service, bool):
            raise ApiError(400, "invalid_request", "service: true or false")
        name = body.get("name") or f"sandbox {'service ' if service else ''}{role}"
        token = self.state.mint_token(
            account,
            role=role,
            permissions=tuple(permissions),
            inline_role=inline_role,
            service=service,
            name=name,
        )
        return json_response(
            201,
            {
                "token": token.secret,
                "id": token.id,
                "account_id": account.id,
                "role": role,
                "service": service,
                "permissions": list(token.permissions),
                "inline_role": token.inline_role,
            },
        )

    def token_form(self, request: Request) -> Response:
        return redirect("/_sandbox/#create-token")

    def create_token_from_form(self, request: Request) -> Response:
        """The overview's form: mint an API access token and show it once, as HTML."""
        form = request.form()
        account = self.state.accounts.get(form.get("account_id", ""))
        if account is None:
            page = pages.message_page("Unknown account", "Choose an account from the list.")
            return html_response(404, page)
        role = form.get("role", "writer")
        if role not in FORM_ROLES:
            page = pages.message_page("Unknown role", "The role is reader or writer.")
            return html_response(400, page)
        name = form.get("name", "").strip() or f"sandbox {role}"
        token = self.state.mint_token(account, role=role, name=name)
        return html_response(
            200,
            pages.token_created_page(token, account),
            {"Cache-Control": "no-store", "Pragma": "no-cache"},
        )

    def revoke_token(self, request: Request) -> Response:
        revoked = self.state.revoke(_string(_object(request), "token"))
        return json_response(200 if revoked else 404, {"revoked": revoked})

    def register_client(self, request: Request) -> Response:
        """Registers or replaces a client, so re-running a setup script is harmless."""
        body = _object(request)
        client = OAuthClient(
            client_id=_string(body, "client_id"),
            client_secret=_string(body, "client_secret"),
            redirect_uri=_string(body, "redirect_uri"),
            name=body.get("name") or body["client_id"],
        )
        existed = client.client_id in self.state.oauth_clients
        self.state.oauth_clients[client.client_id] = client
        return json_response(
            200 if existed else 201,
            {
                "client_id": client.client_id,
                "name": client.name,
                "redirect_uri": client.redirect_uri,
            },
        )

    def set_limits(self, request: Request) -> Response:
        """Keys left out keep their value; `null` lifts a limit."""
        body = _object(request)
        limits = self.state.limits
        values = {
            "global_per_10s": limits.global_per_window,
            "route_per_10s": limits.route_per_window,
        }
        for name in values:
            if name in body:
                value = body[name]
                if value is not None and (
                    isinstance(value, bool) or not isinstance(value, int) or value < 0
                ):
                    raise ApiError(
                        400, "invalid_request", f"{name}: a non-negative integer or null"
                    )
                values[name] = value
        retry_after = body.get("retry_after_mode", limits.retry_after_mode)
        if not isinstance(retry_after, bool):
            raise ApiError(400, "invalid_request", "retry_after_mode: true or false")
        self.state.limits = Limits(values["global_per_10s"], values["route_per_10s"], retry_after)
        self.app.limiter.reset()
        return json_response(200, {**values, "retry_after_mode": retry_after})

    def set_faults(self, request: Request) -> Response:
        faults = parse_faults(_object(request), self.state.faults)
        self.state.faults = faults
        return json_response(
            200,
            {
                "rate": faults.rate,
                "kinds": list(faults.kinds),
                "routes": list(faults.routes),
                "latency_ms": faults.latency_ms,
                "slow_ms": faults.slow_ms,
            },
        )

    def _metric_project(self, body: dict[str, Any]) -> tuple[Project, str]:
        """The project holding the body's metric (`account_id` defaults to the demo's)."""
        account_id = body.get("account_id") or self.state.demo_account.id
        account = self.state.accounts.get(account_id)
        if account is None:
            raise ApiError(404, "not_found", f"Unknown account {account_id}")
        project_key = body.get("project", "default")
        project = account.projects.get(project_key)
        key = _string(body, "key")
        if project is None or key not in project.metrics:
            raise ApiError(404, "not_found", f"No metric {key} in project {project_key}")
        return project, key

    def set_metric_usage(self, request: Request) -> Response:
        """How many experiments, guarded rollouts and metric groups use a metric; keys
        left out keep their value."""
        body = _object(request)
        project, key = self._metric_project(body)
        usage = project.usage.get(key, MetricUsage())
        counts = {name: _count(body, name, getattr(usage, name)) for name in USAGE_FIELDS}
        project.usage[key] = MetricUsage(**counts)
        return json_response(200, {"project": project.key, "key": key, **counts})

    def set_metric_group_usage(self, request: Request) -> Response:
        """How many experiments (ever and active) and active guarded rollouts use a metric
        group; keys left out keep their value. Body: {account_id?, project_key (or
        project, as for metric-usage; default `default`), key, counts...}."""
        body = _object(request)
        account_id = body.get("account_id") or self.state.demo_account.id
        account = self.state.accounts.get(account_id)
        if account is None:
            raise ApiError(404, "not_found", f"Unknown account {account_id}")
        project_key = body.get("project_key") or body.get("project") or "default"
        project = account.projects.get(project_key)
        key = _string(body, "key")
        if project is None or key not in project.metric_groups:
            raise ApiError(404, "not_found", f"No metric group {key} in project {project_key}")
        usage = project.group_usage.get(key, MetricGroupUsage())
        counts = {name: _count(body, name, getattr(usage, name)) for name in GROUP_USAGE_FIELDS}
        project.group_usage[key] = MetricGroupUsage(**counts)
        return json_response(200, {"project_key": project.key, "key": key, **counts})

    def set_races(self, request: Request) -> Response:
        """The next `count` patchMetric calls on the metric lose a race to another edit."""
        body = _object(request)
        project, key = self._metric_project(body)
        project.races[key] = _count(body, "count", 1)
        return json_response(200, {"project": project.key, "key": key, "count": project.races[key]})

    def reset(self, request: Request) -> Response:
        self.state.reset()
        self.app.limiter.reset()
        return json_response(200, {"reset": True, "demo_account_id": self.state.demo_account.id})
