"""One log line and one metric observation per LaunchDarkly HTTP call.

The transport wraps each call in `launchdarkly_call` and reports the answer when one
comes. What is logged: method, route template, path (no query string), status,
duration and the rate-limit headers. Never a header of the request (the token is in
Authorization), never a body.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from connector.launchdarkly.errors import Timeout
from connector.launchdarkly.ratelimit import RateLimitInfo
from connector.launchdarkly.routes import route_template
from connector.observability import prometheus

log = logging.getLogger("connector.launchdarkly.calls")


@dataclass
class Call:
    status: int | None = None
    rate_limit: RateLimitInfo | None = None

    def answered(self, status: int, rate_limit: RateLimitInfo) -> None:
        self.status = status
        self.rate_limit = rate_limit


@contextmanager
def launchdarkly_call(method: str, path_or_href: str) -> Iterator[Call]:
    call = Call()
    started = time.monotonic()
    failure: BaseException | None = None
    try:
        yield call
    except BaseException as exc:
        failure = exc
        raise
    finally:
        _observed(method, path_or_href, call, time.monotonic() - started, failure)


def _observed(
    method: str, path_or_href: str, call: Call, seconds: float, failure: BaseException | None
) -> None:
    route = route_template(path_or_href)
    if call.status is not None:
        status = str(call.status)
    elif isinstance(failure, Timeout):
        status = "timeout"
    else:
        status = "error"  # no answer: connection failed, cut short, or refused to send
    prometheus.launchdarkly_call_observed(
        method=method, route=route, status=status, seconds=seconds
    )
    duration_ms = round(seconds * 1000, 1)
    fields: dict[str, Any] = {
        "ld_method": method,
        "ld_route": route,
        "ld_path": urlsplit(path_or_href).path,
        "ld_status": status,
        "duration_ms": duration_ms,
    }
    limits = ""
    info = call.rate_limit
    if info is not None:
        now = time.time()
        reset_in_s = None if info.reset_at is None else round(info.reset_at - now, 1)
        fields.update(
            ratelimit_global_remaining=info.global_remaining,
            ratelimit_route_remaining=info.route_remaining,
            ratelimit_reset_in_s=reset_in_s,
            retry_after_s=info.retry_after_s,
        )
        limits = "".join(
            f" {label}={value}"
            for label, value in (
                ("global_remaining", info.global_remaining),
                ("route_remaining", info.route_remaining),
                ("reset_in_s", reset_in_s),
                ("retry_after_s", info.retry_after_s),
            )
            if value is not None
        )
    if failure is not None and call.status is None:
        fields["ld_error"] = type(failure).__name__
    log.info(
        "LaunchDarkly %s %s %s %.1fms%s",
        method,
        route,
        status,
        duration_ms,
        limits,
        extra=fields,
    )
