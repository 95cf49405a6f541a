"""Metric event import: `POST /v2/event-data-import/{projectKey}/{environmentKey}`.

LaunchDarkly documents this outside the OpenAPI spec, on one page:
https://launchdarkly.com/docs/home/metrics/import-metric-events (now also served as
https://launchdarkly.com/docs/home/metrics/import-events). The stored copy our search
tool reaches shows the page's opening only; the rules it cuts off come from the digest
of the same page in `shared/launchdarkly/README.md` ("Event import (docs,
home/metrics/import-events)"), quoted below as README. Each rule, in the order checked:

- Who may import [EVT-2]. Page: "The access token must have a role that allows the
  importEventData action. We strongly recommend using an dedicated access token with
  this permission." README: "`401` when the token lacks `importEventData`". So a token
  whose permissions include importEventData may import, and one that may not is 401
  `unauthorized` (not 403). UNSETTLED, ours: the page does not say whether the built-in
  Writer role allows importEventData; nothing says it cannot, so a writer token may.
  UNSETTLED, ours: "The docs do not say whether OAuth tokens can import" (README); an
  OAuth token may import when its grant has the `writer` scope (its role is then
  writer), never with `reader` alone.
- Content-Length [EVT-6]. Page: "Content-Length: LENGTH_IN_BYTES, required". A request
  without it is 411 `length_required`: the HTTP layer (`server.py`) answers a chunked
  body so, and the handler a request with no Content-Length at all.
- Size [EVT-5]. README: "10 MB per request". Measured on the bytes received, so on the
  compressed size of a gzipped body; over it is 413. Ours: the code
  `request_entity_too_large` (no source names one), and "10 MB" read as 10,000,000
  bytes, the stricter reading, so a client that fits here fits either way. Ours: at
  most 100,000,000 bytes after decompression, also 413, so a gzip bomb cannot exhaust
  memory. The HTTP layer keeps no over-limit body (`body_limit`).
- User-Agent [EVT-6]. README: "`Content-Length` and `User-Agent`
  (`MetricImport-<Company>-int/<version>`) required". Absent or empty is 400. Ours:
  only presence is checked, not that form.
- Content-Type. Page: "Content-Type: application/json, required". Otherwise 400.
- Event schema [EVT-3]. README: "`406` when `X-LaunchDarkly-Event-Schema` is not `4`".
  Ours: the code `not_acceptable`.
- Encoding [EVT-7]. README: "`Content-Encoding: gzip` ... optional". A gzip body is
  decompressed, then checked like any other; one that does not decompress is 400.
  Ours: any other encoding (not `identity`) is 415 `unsupported_media_type`.
- Environment. Page: "Events are specific to one LaunchDarkly environment." UNSETTLED,
  ours: nothing says what an unknown project or environment answers; it stays 404
  `not_found`, like the REST API's unknown keys, rather than a silent drop.
- Body [EVT-4]. README: "`400` only when nothing in the payload was accepted; beyond
  JSON parsing and `kind: custom`, bad events get 202 and are silently dropped". So
  400 when the body is not JSON, not an array, empty, or holds no object with
  `kind: "custom"`. Otherwise 202, and each event that fails a later check is dropped
  and counted under its reason in `GET /_sandbox/events` `dropped`: a non-custom item
  beside custom ones (`not a custom event`), `missing key`, `bad creationDate` (ours:
  a positive integer of unix milliseconds), `bad contextKeys` (ours: a non-empty object
  of kind -> non-empty string key), `bad metricValue` (a number when present; README:
  "`metricValue` is required for numeric metrics and ignored for conversions", which
  we do not check per metric).
- Metrics [EVT-4]. README: "Events only count if a metric with a matching `eventKey`
  exists." An event whose key no metric of that project has as `eventKey` is dropped
  as `no metric for event key`. Ours: the match is checked when the event arrives; a
  metric created later does not bring it back (README: "there is no backfill").
- Deduplication [EVT-8]. README: "`X-LaunchDarkly-Payload-ID` optional (a retry must
  reuse the id; LaunchDarkly deduplicates on it; its window is not documented)". A
  payload id seen before for the same account, project and environment is answered
  202 and counted once; ours: the window is the sandbox's lifetime (until reset). A
  payload without the header is accepted and counted, since the docs call it
  optional; it cannot be deduplicated.
- Answer [EVT-1]. README: "`202` when accepted"; the body is empty.
- Per metric [FLT-8]. Ours: an event kept above also counts for each metric of the
  project whose `eventKey` is its key and whose `filters` let it through, matched on
  the event's `data` and `contextKeys` as `sandbox/filters.py` says (LaunchDarkly
  publishes no matching rules). `GET /_sandbox/events` shows these as `by_metric`.
"""

from __future__ import annotations

import json
import re
import zlib
from typing import Any
from urllib.parse import urlsplit

from sandbox.filters import event_matches
from sandbox.messages import ApiError, Request, Response
from sandbox.state import SandboxState, Token

IMPORT_PERMISSION = "importEventData"
EVENT_SCHEMA = "4"
IMPORT_PATH = re.compile(r"^/v2/event-data-import/[^/]+/[^/]+$")
MAX_REQUEST_BYTES = 10_000_000  # LaunchDarkly: 10 MB per request, as sent
MAX_DECOMPRESSED_BYTES = 100_000_000  # ours: where a gzip bomb stops
NOT_CUSTOM = "not a custom event"
NO_METRIC = "no metric for event key"


def body_limit(target: str) -> int | None:
    """The most body bytes the HTTP layer may keep for a request to `target`; None: any."""
    return MAX_REQUEST_BYTES if IMPORT_PATH.match(urlsplit(target).path) else None


def can_import(caller: Token) -> bool:
    # An OAuth token's role is writer when its grant has the writer scope (oauth.py).
    return caller.role == "writer" or IMPORT_PERMISSION in caller.permissions


def _drop_reason(event: dict[str, Any]) -> str | None:
    """Why LaunchDarkly would drop this custom event, or None to keep it."""
    if not isinstance(event.get("key"), str) or not event["key"]:
        return "missing key"
    created = event.get("creationDate")
    if isinstance(created, bool) or not isinstance(created, int) or created <= 0:
        return "bad creationDate"
    contexts = event.get("contextKeys")
    if (
        not isinstance(contexts, dict)
        or not contexts
        or not all(isinstance(k, str) and isinstance(v, str) and v for k, v in contexts.items())
    ):
        return "bad contextKeys"
    value = event.get("metricValue")
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        return "bad metricValue"
    return None


def _decoded_body(request: Request) -> bytes:
    encoding = request.header("Content-Encoding").strip().lower()
    if encoding in ("", "identity"):
        return request.body
    if encoding != "gzip":
        raise ApiError(
            415, "unsupported_media_type", f"Content-Encoding {encoding} is not supported"
        )
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip framing only
    try:
        # One byte past the cap is enough to know it is over.
        body = inflater.decompress(request.body, MAX_DECOMPRESSED_BYTES + 1)
    except zlib.error as exc:
        raise ApiError(400, "invalid_request", "body is not valid gzip") from exc
    if len(body) > MAX_DECOMPRESSED_BYTES:
        raise ApiError(
            413,
            "request_entity_too_large",
            f"body decompresses to more than {MAX_DECOMPRESSED_BYTES} bytes",
        )
    if not inflater.eof:
        raise ApiError(400, "invalid_request", "body is not valid gzip (truncated)")
    return body


class EventImport:
    def __init__(self, state: SandboxState) -> None:
        self.state = state

    def post(self, request: Request, caller: Token, project_key: str, env_key: str) -> Response:
        if not can_import(caller):
            raise ApiError(401, "unauthorized", "This token's role does not allow importEventData")
        declared = request.header("Content-Length").strip()
        if not declared.isdigit():
            raise ApiError(411, "length_required", "Content-Length is required")
        # The HTTP layer keeps no over-limit body, so the declared length decides.
        if max(int(declared), len(request.body)) > MAX_REQUEST_BYTES:
            raise ApiError(
                413,
                "request_entity_too_large",
                f"a request may carry at most {MAX_REQUEST_BYTES} bytes",
            )
        if not request.header("User-Agent").strip():
            raise ApiError(400, "invalid_request", "User-Agent is required")
        if not request.header("Content-Type").startswith("application/json"):
            raise ApiError(400, "invalid_request", "Content-Type must be application/json")
        if request.header("X-LaunchDarkly-Event-Schema") != EVENT_SCHEMA:
            raise ApiError(406, "not_acceptable", "X-LaunchDarkly-Event-Schema must be 4")
        try:
            items = json.loads(_decoded_body(request))
        except ValueError as exc:
            raise ApiError(400, "invalid_request", "body is not valid JSON") from exc
        if not isinstance(items, list) or not items:
            raise ApiError(400, "invalid_request", "body must be a non-empty array of events")
        custom = [item for item in items if isinstance(item, dict) and item.get("kind") == "custom"]
        if not custom:
            raise ApiError(400, "invalid_request", "no event in the payload has kind custom")
        account = self.state.accounts[caller.account_id]
        project = account.projects.get(project_key)
        if project is None or env_key not in project.environments:
            raise ApiError(
                404, "not_found", f"Unknown project or environment {project_key}/{env_key}"
            )
        payload_id = request.header("X-LaunchDarkly-Payload-ID")
        if payload_id:
            seen = (account.id, project_key, env_key, payload_id)
            if seen in self.state.event_payloads:
                self.state.duplicate_payloads += 1
                return Response(202, b"", None)
            self.state.event_payloads.add(seen)
        # event key -> (metric key, filter) of each metric the key counts for, once per
        # request rather than per event: imports are large.
        metrics_by_event: dict[str, list[tuple[str, dict[str, Any] | None]]] = {}
        for metric in project.metrics.values():
            if metric.get("eventKey"):
                metrics_by_event.setdefault(metric["eventKey"], []).append(
                    (metric["key"], metric.get("filters"))
                )
        dropped = self.state.dropped_events
        if len(custom) < len(items):
            dropped[NOT_CUSTOM] = dropped.get(NOT_CUSTOM, 0) + len(items) - len(custom)
        for event in custom:
            reason = _drop_reason(event)
            if reason is None and event["key"] not in metrics_by_event:
                reason = NO_METRIC
            if reason is not None:
                dropped[reason] = dropped.get(reason, 0) + 1
                continue
            count_key = (account.id, project_key, env_key, event["key"])
            self.state.event_counts[count_key] = self.state.event_counts.get(count_key, 0) + 1
            self._count_for_metrics(account.id, project_key, event, metrics_by_event)
        return Response(202, b"", None)

    def _count_for_metrics(
        self,
        account_id: str,
        project_key: str,
        event: dict[str, Any],
        metrics_by_event: dict[str, list[tuple[str, dict[str, Any] | None]]],
    ) -> None:
        """Counts the event for each metric whose event key it has and whose filter lets
        it through [FLT-8]."""
        counts = self.state.metric_event_counts
        for metric_key, metric_filter in metrics_by_event[event["key"]]:
            if metric_filter is None or event_matches(
                metric_filter, event.get("data"), event["contextKeys"]
            ):
                count_key = (account_id, project_key, metric_key)
                counts[count_key] = counts.get(count_key, 0) + 1

    def report(self) -> dict[str, Any]:
        """For `GET /_sandbox/events`: counts nested account -> project -> env -> key; per
        metric, account -> "project/metric key" (all environments together); and the
        events accepted with 202 but dropped, by reason."""
        counts: dict[str, Any] = {}
        for (account, project, env, key), count in sorted(self.state.event_counts.items()):
            counts.setdefault(account, {}).setdefault(project, {}).setdefault(env, {})[key] = count
        by_metric: dict[str, dict[str, int]] = {}
        for (account, project, metric), count in sorted(self.state.metric_event_counts.items()):
            by_metric.setdefault(account, {})[f"{project}/{metric}"] = count
        return {
            "counts": counts,
            "by_metric": by_metric,
            "dropped": dict(sorted(self.state.dropped_events.items())),
            "payloads": len(self.state.event_payloads),
            "duplicate_payloads": self.state.duplicate_payloads,
        }
