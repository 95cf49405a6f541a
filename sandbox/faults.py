"""Injected failures, for testing how a client copes with a flaky network and server.

Kinds, and whether the request's write (a POST/PATCH/DELETE) still happens:

- `500`, `502`, `503`: a JSON error body `{code, message, id}`; the write is NOT applied.
- `html`: 502 with an HTML page, as a proxy or CDN in front would send; NOT applied.
- `truncated`: the real status and full Content-Length, half the body, then the
  connection closes; the write IS applied.
- `slow`: the real answer after `slow_ms` (default 30 s, past any sane read
  timeout); the write IS applied.
- `drop`: the connection closes with no answer at all; the write IS applied.

The last three are the dangerous ones in real life: the server did the work but the
client cannot know. Applying the write before failing is what makes a client's
idempotency (deterministic keys, 409 resolved by reading back) testable.

`latency_ms` delays every answer, the way an internet round trip would; each request
sleeps on its own thread, so latency never serialises concurrent requests. Neither
faults nor latency ever touch `/_sandbox/`.
"""

from __future__ import annotations

import fnmatch
import random
from typing import Any

from sandbox.messages import ApiError, Response, api_error, html_response
from sandbox.state import Faults

KINDS = ("500", "502", "503", "html", "truncated", "slow", "drop")
# Answered instead of running the handler, so nothing is written.
FAIL_BEFORE = {"500", "502", "503", "html"}
# The handler runs (and writes); the HTTP layer then spoils the answer.
FAIL_AFTER = {"truncated", "slow", "drop"}

PROXY_PAGE = """<html>
<head><title>502 Bad Gateway</title></head>
<body>
<center><h1>502 Bad Gateway</h1></center>
<hr><center>nginx</center>
</body>
</html>
"""


def parse_faults(value: Any, current: Faults) -> Faults:
    """Build the fault settings from `PUT /_sandbox/faults`; raises ApiError on bad input."""
    if not isinstance(value, dict):
        raise ApiError(400, "invalid_request", "body must be a JSON object")
    rate = value.get("rate", 0)
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
        raise ApiError(400, "invalid_request", "rate: a number from 0 to 1")
    kinds = value.get("kinds", [])
    if not isinstance(kinds, list) or any(kind not in KINDS for kind in kinds):
        raise ApiError(400, "invalid_request", f"kinds: a list drawn from {list(KINDS)}")
    if rate > 0 and not kinds:
        raise ApiError(400, "invalid_request", "kinds: required when rate > 0")
    routes = value.get("routes") or []
    if not isinstance(routes, list) or not all(isinstance(r, str) for r in routes):
        raise ApiError(400, "invalid_request", "routes: a list of path prefixes or patterns")
    numbers = {}
    for name, default in (("latency_ms", 0), ("slow_ms", current.slow_ms)):
        number = value.get(name, default)
        if number is None:
            number = default
        if isinstance(number, bool) or not isinstance(number, int) or number < 0:
            raise ApiError(400, "invalid_request", f"{name}: a non-negative integer")
        numbers[name] = number
    return Faults(float(rate), tuple(kinds), tuple(routes), **numbers)


def route_matches(patterns: tuple[str, ...], method: str, path: str) -> bool:
    """Empty = every route. A pattern is a path prefix, or a glob when it has `*`,
    optionally preceded by a method: `"POST /api/v2/metrics/*"`."""
    if not patterns:
        return True
    for pattern in patterns:
        want_method, _, want_path = pattern.rpartition(" ")
        if want_method and want_method.upper() != method:
            continue
        if fnmatch.fnmatchcase(path, want_path) if "*" in want_path else path.startswith(want_path):
            return True
    return False


def pick_fault(faults: Faults, method: str, path: str) -> str | None:
    if faults.rate <= 0 or not route_matches(faults.routes, method, path):
        return None
    if random.random() >= faults.rate:
        return None
    return random.choice(faults.kinds)


def failure_response(kind: str) -> Response:
    """The answer for a kind in FAIL_BEFORE."""
    if kind == "html":
        return html_response(502, PROXY_PAGE)
    status = int(kind)
    code, message = {
        500: ("internal_server_error", "An unexpected error occurred"),
        502: ("bad_gateway", "Bad gateway"),
        503: ("service_unavailable", "Service temporarily unavailable"),
    }[status]
    return api_error(status, code, message)
