"""LaunchDarkly's rate limits, shared by every worker that calls for one account.

LaunchDarkly does not publish its limits; it answers with the budget left in the
current 10-second window (`X-Ratelimit-Global-Remaining` per account,
`X-Ratelimit-Route-Remaining` per route) and when the window resets
(`X-Ratelimit-Reset`, epoch milliseconds). Every worker reserves a call here before
making it and reports the headers after, so all workers together spend the budget
without overshooting: a call is allowed only while `remaining - in flight > 0`
(the server may not have counted the calls still in flight), and a 429 pauses the
whole account until the time LaunchDarkly gave. State lives in Redis, or in a
locked file in the embedded configuration (connector.shared_state).
"""

from __future__ import annotations

import time
from typing import Any

from connector.launchdarkly.ratelimit import RateLimitInfo, clamp_wait
from connector.shared_state import update_json

# A reservation whose call never reported back (its worker died) stops counting
# after this long; it is longer than any call can take (read timeout 20 s).
RESERVATION_TTL_S = 30.0
# When the window's reset time is unknown, look again this soon.
UNKNOWN_RESET_WAIT_S = 0.25


def _window() -> dict[str, Any]:
    return {"remaining": None, "limit": None, "reset_at": None, "in_flight": []}


def _roll(window: dict[str, Any], now: float) -> None:
    """Forget reservations that can no longer be in flight, and start a new window
    when the old one has reset (with the budget the last window had)."""
    window["in_flight"] = [t for t in window["in_flight"] if now - t < RESERVATION_TTL_S]
    if window["reset_at"] is not None and now >= window["reset_at"]:
        window["remaining"] = window["limit"]
        window["reset_at"] = None


def _wait_for(window: dict[str, Any], now: float) -> float:
    if window["remaining"] is None or window["remaining"] - len(window["in_flight"]) > 0:
        return 0.0
    if window["reset_at"] is None:
        return UNKNOWN_RESET_WAIT_S
    return max(clamp_wait(window["reset_at"] - now), 0.01)


def _account() -> dict[str, Any]:
    return {"paused_until": 0.0, "global": _window(), "routes": {}}


def _learn(
    window: dict[str, Any], remaining: int | None, info: RateLimitInfo | None, now: float
) -> None:
    """Take what one answer says of a window's budget."""
    if remaining is None or info is None:
        return
    window["limit"] = max(window["limit"] or 0, remaining + 1)
    reset_at = info.reset_at
    if reset_at is not None and (
        reset_at <= now or (window["reset_at"] is not None and reset_at < window["reset_at"])
    ):
        return  # an answer from a window that is over: says nothing of this one
    if reset_at is not None and reset_at == window["reset_at"]:
        # Answers come back out of order: within one window the budget only shrinks,
        # so a late answer counted earlier must not raise it again.
        remaining = min(
            remaining, window["remaining"] if window["remaining"] is not None else remaining
        )
    window["remaining"] = remaining
    window["reset_at"] = reset_at


class RateBudget:
    """The shared budget of one LaunchDarkly account."""

    def __init__(self, account_id: str) -> None:
        self.name = f"ld-budget:{account_id}"

    def acquire(self, route: str, *, now: float | None = None) -> float:
        """Reserve one call on `route`. Returns 0 when reserved, else how many seconds
        to wait before asking again."""
        now = time.time() if now is None else now

        def change(state):
            state = state or _account()
            if state["paused_until"] > now:
                return clamp_wait(state["paused_until"] - now), state
            windows = [state["global"], state["routes"].setdefault(route, _window())]
            for window in windows:
                _roll(window, now)
            wait = max(_wait_for(window, now) for window in windows)
            if wait == 0:
                for window in windows:
                    window["in_flight"].append(now)
            return wait, state

        return update_json(self.name, change)

    def release(
        self,
        route: str,
        info: RateLimitInfo | None,
        *,
        rate_limited: bool = False,
        now: float | None = None,
    ) -> None:
        """Report a reserved call's answer (`info` None: no answer at all)."""
        now = time.time() if now is None else now

        def change(state):
            state = state or _account()
            route_window = state["routes"].setdefault(route, _window())
            for window, remaining in (
                (state["global"], info.global_remaining if info else None),
                (route_window, info.route_remaining if info else None),
            ):
                if window["in_flight"]:
                    window["in_flight"].pop(0)
                _learn(window, remaining, info, now)
            if rate_limited and info is not None:
                state["paused_until"] = max(state["paused_until"], now + info.wait_s(now))
            return None, state

        update_json(self.name, change)

    def observe(self, info: RateLimitInfo, *, now: float | None = None) -> None:
        """Learn from the answer to a call made without a reservation (a page asking
        for the project list): the account's window learns what is left, and an answer
        that leaves nothing (a 429 says remaining 0, or sends only `Retry-After`)
        pauses the account, for every worker too, until the window resets."""
        now = time.time() if now is None else now

        def change(state):
            state = state or _account()
            _learn(state["global"], info.global_remaining, info, now)
            if info.retry_after_s is not None or info.global_remaining == 0:
                state["paused_until"] = max(state["paused_until"], now + info.wait_s(now))
            return None, state

        update_json(self.name, change)

    def paused_until(self, *, now: float | None = None) -> float | None:
        """Until when the account is paused after a 429, if it is now."""
        now = time.time() if now is None else now

        def peek(state):
            until = (state or {}).get("paused_until", 0.0)
            return (until if until > now else None), state

        return update_json(self.name, peek)

    def limited_until(self, *, now: float | None = None) -> float | None:
        """When the account may call again, if it is waiting now (for status pages)."""
        now = time.time() if now is None else now

        def peek(state):
            if not state:
                return None, state
            times = [state["paused_until"]] + [
                w["reset_at"]
                for w in (state["global"], *state["routes"].values())
                if w["reset_at"] and _wait_for(w, now) > 0
            ]
            latest = max(t or 0 for t in times)
            return (latest if latest > now else None), state

        return update_json(self.name, peek)
