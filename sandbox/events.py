"""Metric event import: `POST /v2/event-data-import/{projectKey}/{environmentKey}`.

LaunchDarkly documents this outside the OpenAPI spec
(https://launchdarkly.com/docs/home/metrics/import-metric-events); the header and body
details follow the README's notes (Snowplow's LaunchDarkly tag agrees):
`X-LaunchDarkly-Event-Schema: 4`, `X-LaunchDarkly-Payload-ID`, a JSON array of
`{kind: "custom", key, creationDate, contextKeys, metricValue?}`, answered 202.

A payload id seen before (per account) is accepted again and counted once: that is
what lets a client retry a send whose answer it lost.
"""

from __future__ import annotations

from typing import Any

from sandbox.messages import ApiError, Request, Response
from sandbox.state import SandboxState, Token

IMPORT_PERMISSION = "importEventData"
EVENT_SCHEMA = "4"


def can_import(caller: Token) -> bool:
    return caller.role == "writer" or IMPORT_PERMISSION in caller.permissions


def _event_problem(index: int, event: Any) -> str | None:
    where = f"event {index}"
    if not isinstance(event, dict):
        return f"{where}: must be an object"
    if event.get("kind") != "custom":
        return f"{where}: kind must be custom"
    if not isinstance(event.get("key"), str) or not event["key"]:
        return f"{where}: key must be a non-empty string"
    created = event.get("creationDate")
    if isinstance(created, bool) or not isinstance(created, int) or created <= 0:
        return f"{where}: creationDate must be unix milliseconds"
    contexts = event.get("contextKeys")
    if (
        not isinstance(contexts, dict)
        or not contexts
        or not all(isinstance(k, str) and isinstance(v, str) and v for k, v in contexts.items())
    ):
        return f"{where}: contextKeys must map context kinds to keys"
    value = event.get("metricValue")
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        return f"{where}: metricValue must be a number"
    return None


class EventImport:
    def __init__(self, state: SandboxState) -> None:
        self.state = state

    def post(self, request: Request, caller: Token, project_key: str, env_key: str) -> Response:
        if not can_import(caller):
            raise ApiError(403, "forbidden", "This token may not import event data")
        if not request.header("Content-Type").startswith("application/json"):
            raise ApiError(400, "invalid_request", "Content-Type must be application/json")
        if request.header("X-LaunchDarkly-Event-Schema") != EVENT_SCHEMA:
            raise ApiError(400, "invalid_request", "X-LaunchDarkly-Event-Schema must be 4")
        payload_id = request.header("X-LaunchDarkly-Payload-ID")
        if not payload_id:
            raise ApiError(400, "invalid_request", "X-LaunchDarkly-Payload-ID is required")
        try:
            events = request.json()
        except ValueError as exc:
            raise ApiError(400, "invalid_request", "body is not valid JSON") from exc
        if not isinstance(events, list) or not events:
            raise ApiError(400, "invalid_request", "body must be a non-empty array of events")
        for index, event in enumerate(events):
            problem = _event_problem(index, event)
            if problem:
                raise ApiError(400, "invalid_request", problem)
        account = self.state.accounts[caller.account_id]
        project = account.projects.get(project_key)
        if project is None or env_key not in project.environments:
            raise ApiError(
                404, "not_found", f"Unknown project or environment {project_key}/{env_key}"
            )
        seen = (account.id, payload_id)
        if seen in self.state.event_payloads:
            self.state.duplicate_payloads += 1
        else:
            self.state.event_payloads.add(seen)
            for event in events:
                count_key = (account.id, project_key, env_key, event["key"])
                self.state.event_counts[count_key] = self.state.event_counts.get(count_key, 0) + 1
        return Response(202, b"", None)

    def report(self) -> dict[str, Any]:
        """For `GET /_sandbox/events`: counts nested account -> project -> env -> key."""
        counts: dict[str, Any] = {}
        for (account, project, env, key), count in sorted(self.state.event_counts.items()):
            counts.setdefault(account, {}).setdefault(project, {}).setdefault(env, {})[key] = count
        return {
            "counts": counts,
            "payloads": len(self.state.event_payloads),
            "duplicate_payloads": self.state.duplicate_payloads,
        }
