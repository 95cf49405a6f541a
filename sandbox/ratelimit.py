"""Rate limits shaped like LaunchDarkly's (https://launchdarkly.com/docs/api#rate-limiting).

- A global limit per account and a route limit per account, URL pattern and verb,
  both counted in fixed windows (10 s at LaunchDarkly; configurable here so tests
  need not wait). They answer `X-Ratelimit-Global-Remaining`,
  `X-Ratelimit-Route-Remaining` and `X-Ratelimit-Reset`, the end of the window in
  epoch **milliseconds**, and 429 `{"code": "rate_limited"}` past the limit.
- `retry_after_mode` models LaunchDarkly's IP-based limits instead: counted per
  client address, and a 429 carries only `Retry-After` in whole seconds.

Routes without a configured limit send none of these headers, as LaunchDarkly's do, and
no header LaunchDarkly does not document (no limit value, only what remains).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from sandbox.state import Limits


@dataclass(frozen=True)
class Decision:
    allowed: bool
    headers: dict[str, str]


class RateLimiter:
    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._lock = threading.Lock()
        # counter key -> (window index, requests counted in it)
        self._counts: dict[tuple[str, ...], tuple[int, int]] = {}

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()

    def _count(self, key: tuple[str, ...], window: int) -> int:
        counted_window, count = self._counts.get(key, (window, 0))
        return count if counted_window == window else 0

    def check(self, limits: Limits, *, account_id: str, route: str, client_ip: str) -> Decision:
        """Count one request and decide; a refused request is not counted."""
        if limits.global_per_window is None and limits.route_per_window is None:
            return Decision(True, {})
        now = time.time()
        window = math.floor(now / self.window_s)
        reset_at = (window + 1) * self.window_s
        owner = f"ip:{client_ip}" if limits.retry_after_mode else f"account:{account_id}"
        counters: list[tuple[str, tuple[str, ...], int]] = []
        if limits.global_per_window is not None:
            counters.append(("Global", (owner,), limits.global_per_window))
        if limits.route_per_window is not None:
            counters.append(("Route", (owner, route), limits.route_per_window))
        with self._lock:
            used = {name: self._count(key, window) for name, key, _ in counters}
            allowed = all(used[name] < limit for name, _, limit in counters)
            if allowed:
                for name, key, _ in counters:
                    used[name] += 1
                    self._counts[key] = (window, used[name])
        if limits.retry_after_mode:
            retry_after = str(max(1, math.ceil(reset_at - now)))
            return Decision(allowed, {} if allowed else {"Retry-After": retry_after})
        headers = {
            f"X-Ratelimit-{name}-Remaining": str(max(0, limit - used[name]))
            for name, _, limit in counters
        }
        # LaunchDarkly: X-Ratelimit-Reset is epoch milliseconds.
        headers["X-Ratelimit-Reset"] = str(int(reset_at * 1000))
        return Decision(allowed, headers)
