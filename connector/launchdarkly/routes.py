"""The route templates of the LaunchDarkly endpoints the connector calls, as LaunchDarkly's
API reference names their paths (https://launchdarkly.com/docs/api).

Logs and metrics name a call by its template, not by its path: a path carries project
and metric keys, which would give a metric one series per key.
"""

from __future__ import annotations

from urllib.parse import urlsplit

TEMPLATES = (
    "/api/v2/caller-identity",
    "/api/v2/members/{id}",
    "/api/v2/tokens/{id}",
    "/api/v2/projects",
    "/api/v2/projects/{projectKey}",
    "/api/v2/projects/{projectKey}/environments",
    "/api/v2/projects/{projectKey}/context-kinds",
    "/api/v2/projects/{projectKey}/experimentation-settings",
    "/api/v2/projects/{projectKey}/metric-groups",
    "/api/v2/projects/{projectKey}/metric-groups/{metricGroupKey}",
    "/api/v2/metrics/{projectKey}",
    "/api/v2/metrics/{projectKey}/{metricKey}",
    "/v2/event-data-import/{projectKey}/{environmentKey}",
    "/trust/oauth/token",
    "/trust/oauth/revoke",
)
# Any other path: one series for all of them, however many paths there are.
OTHER = "other"

_SPLIT = tuple(tuple(template.strip("/").split("/")) for template in TEMPLATES)


def route_template(path_or_url: str) -> str:
    """The template of a path, a host-relative link or a URL (its query is ignored):
    `/api/v2/metrics/default/signup?x=1` → `/api/v2/metrics/{projectKey}/{metricKey}`.
    The client escapes every key to one path segment, so a key never spans two."""
    segments = tuple(urlsplit(path_or_url).path.strip("/").split("/"))
    for template, parts in zip(TEMPLATES, _SPLIT, strict=True):
        if len(parts) == len(segments) and all(
            part == segment or (part.startswith("{") and segment)
            for part, segment in zip(parts, segments, strict=True)
        ):
            return template
    return OTHER
