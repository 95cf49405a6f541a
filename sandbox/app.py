"""Routing and the per-request pipeline, independent of any HTTP server.

`/_sandbox/` (the control surface) and a metric's page (`/{projectKey}/metrics/
{metricKey}/details`, LaunchDarkly's UI address for it) are for people and tests, not
the API: never faulted, rate limited or logged. For everything else a request goes:
fault roll -> route -> authenticate -> rate limit -> beta header (beta routes only)
-> role check -> handler,
then the answer gets its latency, is logged (without secrets) and shown to the
optional observer (tests use it to validate every `/api/v2` body against the spec).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sandbox import faults as fault_kinds
from sandbox.api import RestApi
from sandbox.control import Control
from sandbox.events import EventImport
from sandbox.groups import MetricGroupsApi
from sandbox.messages import ApiError, Request, Response
from sandbox.oauth import OAuthServer
from sandbox.ratelimit import RateLimiter
from sandbox.state import SandboxState, Token

logger = logging.getLogger(__name__)

Observer = Callable[[Request, Response], None]

# Never written to the request log.
SECRET_HEADERS = {"authorization", "cookie", "proxy-authorization", "x-api-key"}
METHOD_OVERRIDES = {"PATCH", "PUT", "DELETE"}  # LaunchDarkly: X-HTTP-Method-Override
# Spec, Beta resources: "If you call a beta resource without this header, you receive a
# 403 response." The message is the one LaunchDarkly sends (launchdarkly/api-client-go
# issue #21).
BETA_VERSION = "beta"
BETA_REQUIRED = (
    "This API is in beta. To use it, your request must include the header `LD-API-Version: beta`."
)
# LaunchDarkly's UI page for a metric (a metric's `_site` link). First path segments the
# API and OAuth use are never project keys, so the page cannot shadow their routes.
METRIC_PAGE = re.compile(r"^/(?P<project_key>[^/]+)/metrics/(?P<metric_key>[^/]+)/details$")
NOT_PROJECT_KEYS = {"api", "v2", "trust", "_sandbox", ".well-known"}


@dataclass(frozen=True)
class Route:
    method: str
    template: str  # also the route's identity for per-route rate limits
    handler: Callable[..., Response]
    # public: no token; read: any token; write: a writer token; import: checked by
    # the handler (a writer, or a token with the importEventData permission)
    access: str = "read"
    # A beta resource: answered only with `LD-API-Version: beta` (Spec, Beta resources).
    beta: bool = False

    @property
    def pattern(self) -> re.Pattern[str]:
        return re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.template) + "$")


class SandboxApp:
    def __init__(self, state: SandboxState, observer: Observer | None = None) -> None:
        self.state = state
        self.observer = observer
        self.limiter = RateLimiter(state.options.rate_window_s)
        self.oauth = OAuthServer(state)
        self.api = RestApi(state)
        self.groups = MetricGroupsApi(self.api)
        self.events = EventImport(state)
        self.control = Control(self)
        api = self.api
        routes = [
            Route("GET", "/trust/oauth/authorize", self.oauth.authorize, "public"),
            Route("POST", "/trust/oauth/authorize", self.oauth.authorize, "public"),
            Route("POST", "/trust/oauth/token", self.oauth.token, "public"),
            Route("POST", "/trust/oauth/revoke", self.oauth.revoke, "public"),
            Route("GET", "/.well-known/oauth-authorization-server", self._metadata, "public"),
            Route("GET", "/api/v2/caller-identity", api.get_caller_identity),
            Route("GET", "/api/v2/members/{member_id}", api.get_member),
            Route("GET", "/api/v2/tokens/{token_id}", api.get_token),
            Route("GET", "/api/v2/projects", api.get_projects),
            Route("GET", "/api/v2/projects/{project_key}", api.get_project),
            Route(
                "GET",
                "/api/v2/projects/{project_key}/environments",
                api.get_environments_by_project,
            ),
            Route(
                "GET",
                "/api/v2/projects/{project_key}/context-kinds",
                api.get_context_kinds_by_project_key,
            ),
            Route(
                "GET",
                "/api/v2/projects/{project_key}/experimentation-settings",
                api.get_experimentation_settings,
            ),
            Route(
                "PUT",
                "/api/v2/projects/{project_key}/experimentation-settings",
                api.put_experimentation_settings,
                "write",
            ),
            Route("GET", "/api/v2/metrics/{project_key}", api.get_metrics),
            Route("POST", "/api/v2/metrics/{project_key}", api.post_metric, "write"),
            Route("GET", "/api/v2/metrics/{project_key}/{metric_key}", api.get_metric),
            Route("PATCH", "/api/v2/metrics/{project_key}/{metric_key}", api.patch_metric, "write"),
            Route(
                "DELETE", "/api/v2/metrics/{project_key}/{metric_key}", api.delete_metric, "write"
            ),
            *self._metric_group_routes(),
            Route(
                "POST", "/v2/event-data-import/{project_key}/{env_key}", self.events.post, "import"
            ),
        ]
        self.routes = [(route, route.pattern) for route in routes]

    def _metric_group_routes(self) -> list[Route]:
        groups = self.groups
        collection = "/api/v2/projects/{project_key}/metric-groups"
        item = collection + "/{group_key}"
        return [
            Route("GET", collection, groups.get_metric_groups, beta=True),
            Route("POST", collection, groups.create_metric_group, "write", beta=True),
            Route("GET", item, groups.get_metric_group, beta=True),
            Route("PATCH", item, groups.patch_metric_group, "write", beta=True),
            Route("DELETE", item, groups.delete_metric_group, "write", beta=True),
        ]

    def _metadata(self, request: Request) -> Response:
        return self.oauth.metadata(f"http://{request.header('Host') or 'localhost'}")

    # --- pipeline ------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        override = request.header("X-HTTP-Method-Override").upper()
        if request.method == "POST" and override in METHOD_OVERRIDES:
            request.method = override
        if request.path == "/_sandbox" or request.path.startswith("/_sandbox/"):
            return self.control.handle(request)
        page = METRIC_PAGE.match(request.path)
        if page is not None and page["project_key"] not in NOT_PROJECT_KEYS:
            return self.control.metric_details(request, **page.groupdict())
        settings = self.state.faults
        fault = fault_kinds.pick_fault(settings, request.method, request.path)
        if fault in fault_kinds.FAIL_BEFORE:
            response = fault_kinds.failure_response(fault)
        else:
            response = self._dispatch(request)
        if fault in fault_kinds.FAIL_AFTER:
            response.transport_fault = fault
            if fault == "slow":
                response.delay_s += settings.slow_ms / 1000
        response.delay_s += settings.latency_ms / 1000
        self._log(request, response, fault)
        if self.observer is not None:
            self.observer(request, response)
        return response

    def _dispatch(self, request: Request) -> Response:
        path_known = False
        for route, pattern in self.routes:
            match = pattern.match(request.path)
            if match is None:
                continue
            path_known = True
            if route.method == request.method:
                try:
                    return self._run(route, request, match.groupdict())
                except ApiError as error:
                    return error.response()
                except Exception:
                    logger.exception("sandbox handler failed: %s %s", request.method, request.path)
                    return ApiError(500, "internal_server_error", "Sandbox error").response()
        if path_known:
            return ApiError(405, "method_not_allowed", "Method not allowed").response()
        return ApiError(404, "not_found", f"Unknown path {request.path}").response()

    def _run(self, route: Route, request: Request, params: dict[str, str]) -> Response:
        if route.access == "public":
            return route.handler(request, **params)
        with self.state.lock:
            caller = self._authenticate(request)
            decision = self.limiter.check(
                self.state.limits,
                account_id=caller.account_id,
                route=f"{route.method} {route.template}",
                client_ip=request.client_ip,
            )
            if not decision.allowed:
                response = ApiError(
                    429, "rate_limited", "You've exceeded the API rate limit. Try again later."
                ).response()
            elif route.beta and request.header("LD-API-Version").strip() != BETA_VERSION:
                response = ApiError(403, "forbidden", BETA_REQUIRED).response()
            elif route.access == "write" and caller.role != "writer":
                response = ApiError(
                    403, "forbidden", "Forbidden. Access to the requested resource was denied."
                ).response()
            else:
                try:
                    response = route.handler(request, caller, **params)
                except ApiError as error:
                    response = error.response()
            response.headers.update(decision.headers)
            response.log_extra["account_id"] = caller.account_id
            return response

    def _authenticate(self, request: Request) -> Token:
        """LaunchDarkly: API tokens go raw in Authorization; OAuth tokens as `Bearer`."""
        raw = request.header("Authorization").strip()
        scheme, _, rest = raw.partition(" ")
        secret = rest.strip() if scheme.lower() == "bearer" else raw
        token = self.state.tokens.get(secret) if secret else None
        if token is None or not token.usable(datetime.now(UTC).timestamp()):
            message = "Invalid access token" if secret else "No access token provided"
            raise ApiError(401, "unauthorized", message)
        return token

    def _log(self, request: Request, response: Response, fault: str | None) -> None:
        entry: dict[str, Any] = {
            "time": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "method": request.method,
            "path": request.target,
            "status": response.status,
            "headers": {
                name: value
                for name, value in request.headers.items()
                if name.lower() not in SECRET_HEADERS
            },
            "user_agent": request.header("User-Agent"),
            "ld_api_version": request.header("LD-API-Version"),
            "fault": fault,
            **response.log_extra,
        }
        self.state.log_request(entry)
