"""LaunchDarkly's REST API (https://launchdarkly.com/docs/api) and metric event import,
one method per operation, each naming LaunchDarkly's operationId.

Answers are LaunchDarkly's JSON as plain dicts (typed loosely in `types`); list
operations are iterators that follow `_links.next` until the last page. Every failure
leaves as an error from `errors`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast
from urllib.parse import quote

import requests

from connector.launchdarkly.errors import (
    ConcurrentChange,
    Conflict,
    Forbidden,
    InvalidRequest,
    LaunchDarklyError,
    MalformedResponse,
    NotFound,
    Unauthorized,
    UnexpectedStatus,
)
from connector.launchdarkly.transport import (
    DEFAULT_TIMEOUT,
    RateLimitCallback,
    Transport,
    error_fields,
    json_body,
)
from connector.launchdarkly.types import AuthKind, CallerIdentity, Metric, MetricGroup, Project

# LaunchDarkly: getMetrics accepts at most 50 per page.
MAX_METRICS_PAGE = 50
# LaunchDarkly: getMetricGroups "Defaults to 20. Maximum limit is 50" (limit and offset).
MAX_METRIC_GROUPS_PAGE = 50
# LaunchDarkly: metric groups are a beta API. "Use LD-API-Version: beta ... If you call
# a beta resource without this header, you receive a 403 response"
# (https://launchdarkly.com/docs/api#beta-resources). Sent only on those routes: every
# other call keeps the dated version the transport sends (transport.API_VERSION).
BETA_API_VERSION = "beta"
_BETA_HEADERS = {"LD-API-Version": BETA_API_VERSION}

ERRORS_BY_STATUS: dict[int, type[LaunchDarklyError]] = {
    400: InvalidRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: InvalidRequest,  # LaunchDarkly: a malformed patch
}


class _LaunchDarklyHttp:
    """What the REST and the event import clients share: auth and one `_request`.
    Subclasses name their LaunchDarkly product (for the User-Agent) and usual auth."""

    product = ""
    default_auth_kind: AuthKind = AuthKind.API_TOKEN

    def __init__(
        self,
        *,
        base_url: str,
        token: str,
        auth_kind: AuthKind | None = None,
        product: str | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        session: requests.Session | None = None,
        on_rate_limit: RateLimitCallback | None = None,
    ) -> None:
        auth_kind = auth_kind or self.default_auth_kind
        product = product or self.product
        if auth_kind not in AuthKind.values:
            raise ValueError(f"unknown auth_kind {auth_kind!r}")
        self._transport = Transport(
            base_url=base_url,
            product=product,
            timeout=timeout,
            session=session,
            on_rate_limit=on_rate_limit,
        )
        self._headers = {
            # LaunchDarkly: API access tokens go raw, OAuth access tokens as Bearer.
            "Authorization": f"Bearer {token}" if auth_kind == AuthKind.OAUTH else token,
            "Accept": "application/json",
        }

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """Send one request; LaunchDarkly's JSON answer, or None for an empty one (202, 204)."""
        extra: dict[str, Any] = {"data": data} if data is not None else {"json": json}
        response = self._transport.send(
            method, path, headers={**self._headers, **(headers or {})}, params=params, **extra
        )
        if response.status_code >= 400:
            message, code, request_id = error_fields(response)
            error_class = ERRORS_BY_STATUS.get(response.status_code, UnexpectedStatus)
            if code == "optimistic_locking_error":
                # LaunchDarkly: another change landed first; re-read and try again.
                error_class = ConcurrentChange
            raise error_class(
                message or f"{method} {path}: answered {response.status_code}",
                status=response.status_code,
                code=code,
                request_id=request_id,
            )
        if not response.content:
            return None
        return json_body(response)


class LaunchDarklyClient(_LaunchDarklyHttp):
    """LaunchDarkly's REST API for one token.

    `on_rate_limit` receives the rate-limit headers of every answer, so a budget shared
    by all workers for one account can follow them.
    """

    product = "MetricSync"

    # --- account ---------------------------------------------------------------------

    def get_caller_identity(self) -> CallerIdentity:
        """getCallerIdentity: the account, member, token and scopes behind the token."""
        identity = _object(self._request("GET", "/api/v2/caller-identity"), "caller identity")
        if not isinstance(identity.get("accountId"), str) or not identity["accountId"]:
            raise MalformedResponse("a caller identity without an accountId")
        scopes = identity.get("scopes")
        if scopes is not None and not (
            isinstance(scopes, list) and all(isinstance(s, str) for s in scopes)
        ):
            raise MalformedResponse("a caller identity whose scopes are not a list of names")
        return cast(CallerIdentity, identity)

    def get_member(self, member_id: str = "me") -> dict[str, Any]:
        """getMember; `me` is the member the token acts for."""
        return _object(self._request("GET", f"/api/v2/members/{_segment(member_id)}"), "member")

    def get_token(self, token_id: str) -> dict[str, Any]:
        """getToken: an API access token's `role`, `customRoleIds`, `inlineRole` and
        `serviceToken`. What a token may do is read here: caller identity's `scopes`
        has no documented meaning for API tokens."""
        return _object(self._request("GET", f"/api/v2/tokens/{_segment(token_id)}"), "token")

    # --- projects ----------------------------------------------------------------------

    def list_projects(self, *, limit: int = 20) -> Iterator[Project]:
        """getProjects, every page."""
        return cast(Iterator[Project], self._paginate("/api/v2/projects", {"limit": limit}))

    def get_project(self, project_key: str) -> Project:
        """getProject."""
        project = _object(
            self._request("GET", f"/api/v2/projects/{_segment(project_key)}"), "project"
        )
        if not isinstance(project.get("key"), str):
            raise MalformedResponse("a project without a key")
        return cast(Project, project)

    def list_environments(self, project_key: str, *, limit: int = 20) -> Iterator[dict[str, Any]]:
        """getEnvironmentsByProject, every page. The answers carry SDK keys: do not store them."""
        path = f"/api/v2/projects/{_segment(project_key)}/environments"
        return self._paginate(path, {"limit": limit})

    def list_context_kinds(self, project_key: str) -> list[dict[str, Any]]:
        """getContextKindsByProjectKey (not paginated)."""
        page = self._request("GET", f"/api/v2/projects/{_segment(project_key)}/context-kinds")
        return _items(page)

    def get_experimentation_settings(self, project_key: str) -> dict[str, Any]:
        """getExperimentationSettings: the project's registered randomization units,
        the only ones LaunchDarkly accepts in a metric's `randomizationUnits`."""
        path = f"/api/v2/projects/{_segment(project_key)}/experimentation-settings"
        return _object(self._request("GET", path), "experimentation settings")

    def put_experimentation_settings(
        self, project_key: str, units: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """putExperimentationSettings: replaces the whole list of randomization units
        (`[{randomizationUnit, default}]`), so callers send the ones kept as well."""
        path = f"/api/v2/projects/{_segment(project_key)}/experimentation-settings"
        answer = self._request("PUT", path, json={"randomizationUnits": units})
        return _object(answer, "experimentation settings")

    # --- metrics -----------------------------------------------------------------------

    def list_metrics(
        self,
        project_key: str,
        *,
        filter: str | None = None,
        expand: str | None = None,
        limit: int = MAX_METRICS_PAGE,
    ) -> Iterator[Metric]:
        """getMetrics, every page. `filter` is LaunchDarkly's syntax, e.g.
        `eventKeys anyOf ["signup"]`; `expand=experimentCount` adds each metric's use."""
        params = _metrics_params(filter, limit, expand)
        return cast(Iterator[Metric], self._paginate(_metrics_path(project_key), params))

    def list_metrics_page(
        self,
        project_key: str,
        *,
        next_href: str | None = None,
        filter: str | None = None,
        expand: str | None = None,
        limit: int = MAX_METRICS_PAGE,
    ) -> tuple[list[Metric], str | None]:
        """One page of getMetrics and the next page's href (None after the last), for
        callers that pace every request themselves (the resync)."""
        if next_href is None:
            params = _metrics_params(filter, limit, expand)
            page = self._request("GET", _metrics_path(project_key), params=params)
        else:
            page = self._request("GET", next_href)
        return cast(list[Metric], _items(page)), _next_href(page)

    def get_metric(self, project_key: str, metric_key: str, *, expand: str | None = None) -> Metric:
        """getMetric; `expand=experimentCount` adds how many experiments use it."""
        params = {"expand": expand} if expand else None
        answer = self._request("GET", _metrics_path(project_key, metric_key), params=params)
        return cast(Metric, _object(answer, "metric"))

    def create_metric(self, project_key: str, body: dict[str, Any]) -> Metric:
        """postMetric: `body` is a `MetricPost`. A Conflict means the key exists already."""
        return cast(
            Metric, _object(self._request("POST", _metrics_path(project_key), json=body), "metric")
        )

    def patch_metric(
        self,
        project_key: str,
        metric_key: str,
        patch: list[dict[str, Any]],
        comment: str | None = None,
    ) -> Metric:
        """patchMetric with an RFC 6902 JSON Patch (`[{"op", "path", "value"}]`)."""
        # LaunchDarkly: a comment goes with the patch wrapped as {"comment", "patch"}.
        body: Any = patch if comment is None else {"comment": comment, "patch": patch}
        answer = self._request("PATCH", _metrics_path(project_key, metric_key), json=body)
        return cast(Metric, _object(answer, "metric"))

    def delete_metric(self, project_key: str, metric_key: str) -> None:
        """deleteMetric."""
        self._request("DELETE", _metrics_path(project_key, metric_key))

    # --- metric groups (beta) ------------------------------------------------------------
    # https://launchdarkly.com/docs/home/metrics/metric-groups: funnels and standard
    # groups of metrics, by metric key. Every call sends `LD-API-Version: beta`.

    def list_metric_groups(
        self, project_key: str, *, filter: str | None = None, limit: int = MAX_METRIC_GROUPS_PAGE
    ) -> Iterator[MetricGroup]:
        """getMetricGroups, every page (limit and offset, following `_links.next`).
        `filter` is LaunchDarkly's syntax, e.g. `kind equals 'funnel'`."""
        params = _metric_groups_params(filter, limit)
        pages = self._paginate(_groups_path(project_key), params, headers=_BETA_HEADERS)
        return cast(Iterator[MetricGroup], pages)

    def list_metric_groups_page(
        self,
        project_key: str,
        *,
        next_href: str | None = None,
        limit: int = MAX_METRIC_GROUPS_PAGE,
    ) -> tuple[list[MetricGroup], str | None]:
        """One page of getMetricGroups and the next page's href (None after the last),
        for callers that pace every request themselves (the resync)."""
        if next_href is None:
            params = _metric_groups_params(None, limit)
            page = self._request(
                "GET", _groups_path(project_key), params=params, headers=_BETA_HEADERS
            )
        else:
            page = self._request("GET", next_href, headers=_BETA_HEADERS)
        return cast(list[MetricGroup], _items(page)), _next_href(page)

    def get_metric_group(
        self, project_key: str, group_key: str, *, expand: str | None = None
    ) -> MetricGroup:
        """getMetricGroup; `expand=experimentCount` adds how many experiments use it."""
        params = {"expand": expand} if expand else None
        answer = self._request(
            "GET", _groups_path(project_key, group_key), params=params, headers=_BETA_HEADERS
        )
        return cast(MetricGroup, _object(answer, "metric group"))

    def create_metric_group(self, project_key: str, body: dict[str, Any]) -> MetricGroup:
        """createMetricGroup: `body` is a `MetricGroupPost`. A Conflict means the key
        exists already."""
        answer = self._request("POST", _groups_path(project_key), json=body, headers=_BETA_HEADERS)
        return cast(MetricGroup, _object(answer, "metric group"))

    def patch_metric_group(
        self, project_key: str, group_key: str, patch: list[dict[str, Any]]
    ) -> MetricGroup:
        """patchMetricGroup with an RFC 6902 JSON Patch (`[{"op", "path", "value"}]`)."""
        answer = self._request(
            "PATCH", _groups_path(project_key, group_key), json=patch, headers=_BETA_HEADERS
        )
        return cast(MetricGroup, _object(answer, "metric group"))

    def delete_metric_group(self, project_key: str, group_key: str) -> None:
        """deleteMetricGroup. LaunchDarkly refuses (InvalidRequest) to delete a group
        connected to an experiment."""
        self._request("DELETE", _groups_path(project_key, group_key), headers=_BETA_HEADERS)

    # --- pagination --------------------------------------------------------------------

    def _paginate(
        self, path: str, params: dict[str, Any], *, headers: dict[str, str] | None = None
    ) -> Iterator[dict[str, Any]]:
        """The items of every page, following `_links.next.href` (host-relative, and
        carrying limit, offset and filter) until LaunchDarkly leaves it out. Requests
        are sent as the iteration reaches each page, so errors surface there."""
        page = self._request("GET", path, params=params, headers=headers)
        seen: set[str] = set()
        while True:
            yield from _items(page)
            href = _next_href(page)
            if href is None:
                return
            refuse_page_loop(href, seen)
            page = self._request("GET", href, headers=headers)


class EventImportClient(_LaunchDarklyHttp):
    """LaunchDarkly's metric event import (https://launchdarkly.com/docs/home/metrics/import-metric-events),
    on the events host. The token's role must allow `importEventData`."""

    product = "MetricImport"

    def import_events(
        self,
        project_key: str,
        environment_key: str,
        events: list[dict[str, Any]],
        payload_id: str,
    ) -> None:
        """Send events `{kind: "custom", key, creationDate (unix ms), contextKeys,
        metricValue?}`. Resend a batch with the same `payload_id` after a lost answer:
        LaunchDarkly counts a payload once."""
        path = f"/v2/event-data-import/{_segment(project_key)}/{_segment(environment_key)}"
        self._request(
            "POST",
            path,
            json=events,
            headers={
                "Content-Type": "application/json",
                "X-LaunchDarkly-Event-Schema": "4",
                "X-LaunchDarkly-Payload-ID": payload_id,
            },
        )

    def import_payload(
        self, project_key: str, environment_key: str, gzipped: bytes, *, payload_id: str
    ) -> None:
        """Send a ready JSON array of events, gzip-compressed (LaunchDarkly accepts
        `Content-Encoding: gzip`; at most 10 MB per request as sent)."""
        path = f"/v2/event-data-import/{_segment(project_key)}/{_segment(environment_key)}"
        self._request(
            "POST",
            path,
            data=gzipped,
            headers={
                "Content-Type": "application/json",
                "Content-Encoding": "gzip",
                "X-LaunchDarkly-Event-Schema": "4",
                "X-LaunchDarkly-Payload-ID": payload_id,
            },
        )


def _segment(value: str) -> str:
    """One path segment, escaped so a key can never change the path."""
    return quote(value, safe="")


def _metrics_path(project_key: str, metric_key: str | None = None) -> str:
    path = f"/api/v2/metrics/{_segment(project_key)}"
    return path if metric_key is None else f"{path}/{_segment(metric_key)}"


def _groups_path(project_key: str, group_key: str | None = None) -> str:
    path = f"/api/v2/projects/{_segment(project_key)}/metric-groups"
    return path if group_key is None else f"{path}/{_segment(group_key)}"


def _metric_groups_params(filter: str | None, limit: int) -> dict[str, Any]:
    if not 1 <= limit <= MAX_METRIC_GROUPS_PAGE:
        raise ValueError(f"limit must be 1 to {MAX_METRIC_GROUPS_PAGE}")
    params: dict[str, Any] = {"limit": limit}
    if filter is not None:
        params["filter"] = filter
    return params


def refuse_page_loop(href: str, seen: set[str]) -> None:
    """Record a next page's href; one seen before is a server bug that must not keep a
    worker paging forever."""
    if href in seen:
        raise MalformedResponse(f"pagination loops back to {href}")
    seen.add(href)


def _metrics_params(filter: str | None, limit: int, expand: str | None = None) -> dict[str, Any]:
    if not 1 <= limit <= MAX_METRICS_PAGE:
        raise ValueError(f"limit must be 1 to {MAX_METRICS_PAGE}")
    params: dict[str, Any] = {"limit": limit}
    if filter is not None:
        params["filter"] = filter
    if expand is not None:
        params["expand"] = expand
    return params


def _object(answer: Any, what: str) -> dict[str, Any]:
    """A JSON object answer, or MalformedResponse: nothing downstream has to guess."""
    if not isinstance(answer, dict):
        raise MalformedResponse(f"a {what} answer that is not a JSON object")
    return answer


def _items(page: Any) -> list[dict[str, Any]]:
    items = page.get("items") if isinstance(page, dict) else None
    if not isinstance(items, list):
        raise MalformedResponse("a collection without an items list")
    return items


def _next_href(page: dict[str, Any]) -> str | None:
    links = page.get("_links")
    next_link = links.get("next") if isinstance(links, dict) else None
    href = next_link.get("href") if isinstance(next_link, dict) else None
    return href if isinstance(href, str) and href else None
