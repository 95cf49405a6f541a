"""LaunchDarkly's rate-limit headers, parsed in one place.

LaunchDarkly does not publish its limits; clients are to follow whichever headers are
present (https://launchdarkly.com/docs/api#rate-limiting):
- `X-Ratelimit-Global-Remaining`: the account's global limit, per 10-second window;
- `X-Ratelimit-Route-Remaining`: the limit for one URL pattern and verb, same windows;
- `X-Ratelimit-Reset`: when the window ends;
- `Retry-After`: sent by the IP-based limits on some routes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime

# LaunchDarkly: limits are counted in 10-second windows, so with no header at all,
# waiting one window is the shortest wait that is likely to succeed.
DEFAULT_WAIT_S = 10.0
# A clock skewed against LaunchDarkly's can put the reset in the past; still pause.
MIN_WAIT_S = 1.0
# A wrong or hostile header must not park a worker for hours.
MAX_WAIT_S = 15 * 60.0
# LaunchDarkly's windows are 10 seconds long; a reset or Retry-After further ahead than
# this is not a rate limit but a broken (or hostile) answer. (Generous: the sandbox's
# tests stretch windows to a day; waits are clamped to MAX_WAIT_S all the same.)
MAX_HEADER_HORIZON_S = 2 * 86_400.0


def clamp_wait(seconds: float) -> float:
    """Any wait or countdown the connector derives from LaunchDarkly's answers, bounded
    to [0, MAX_WAIT_S]: a wrong header must never park work for longer."""
    return min(max(seconds, 0.0), MAX_WAIT_S)


@dataclass(frozen=True)
class RateLimitInfo:
    """The rate-limit headers of one answer; None where a header is absent or unreadable."""

    global_remaining: int | None = None
    route_remaining: int | None = None
    reset_at: float | None = None  # epoch seconds
    retry_after_s: float | None = None
    # Why the headers cannot be believed (a reset years ahead, say); such an answer is
    # malformed, and the values above are left out of it.
    absurd: str | None = None

    def wait_s(self, now: float) -> float:
        """How long to wait after a 429, from epoch seconds `now`: the later of
        `Retry-After` and the window's reset, a window when neither was sent, always
        between MIN_WAIT_S and MAX_WAIT_S."""
        waits = [
            wait
            for wait in (
                self.retry_after_s,
                None if self.reset_at is None else self.reset_at - now,
            )
            if wait is not None
        ]
        wait = max(waits) if waits else DEFAULT_WAIT_S
        return clamp_wait(max(wait, MIN_WAIT_S))


def parse_rate_limit_headers(headers: Mapping[str, str], now: float) -> RateLimitInfo:
    """Read the headers (any letter case) of one answer received at epoch seconds `now`.

    A reset or Retry-After more than MAX_HEADER_HORIZON_S ahead is absurd: the answer
    comes back with only `absurd` set, for the transport to refuse it as malformed."""
    lowered = {name.lower(): value.strip() for name, value in headers.items()}
    reset_ms = _number(lowered.get("x-ratelimit-reset"))
    # LaunchDarkly: X-Ratelimit-Reset is epoch milliseconds.
    reset_at = None if reset_ms is None else reset_ms / 1000
    retry_after_s = _retry_after_s(lowered.get("retry-after"), now)
    if reset_at is not None and reset_at - now > MAX_HEADER_HORIZON_S:
        return RateLimitInfo(absurd=f"X-Ratelimit-Reset is {_ahead(reset_at - now)} ahead")
    if retry_after_s is not None and retry_after_s > MAX_HEADER_HORIZON_S:
        return RateLimitInfo(absurd=f"Retry-After is {_ahead(retry_after_s)} ahead")
    return RateLimitInfo(
        global_remaining=_integer(lowered.get("x-ratelimit-global-remaining")),
        route_remaining=_integer(lowered.get("x-ratelimit-route-remaining")),
        reset_at=reset_at,
        retry_after_s=retry_after_s,
    )


def _ahead(seconds: float) -> str:
    days = seconds / 86_400
    return f"{days:,.0f} days" if days >= 1 else f"{seconds / 3600:,.1f} hours"


def _retry_after_s(value: str | None, now: float) -> float | None:
    """RFC 9110 §10.2.3: delay-seconds (what LaunchDarkly sends) or an HTTP-date."""
    if not value:
        return None
    seconds = _number(value)
    if seconds is not None:
        return max(seconds, 0.0)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000": RFC 9110 dates are GMT all the same
        when = when.replace(tzinfo=UTC)
    return max(when.timestamp() - now, 0.0)


def _number(value: str | None) -> float | None:
    try:
        number = float(value) if value else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) else None


def _integer(value: str | None) -> int | None:
    number = _number(value)
    return None if number is None else int(number)
