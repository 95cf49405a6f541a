"""The one way background work calls LaunchDarkly for a connection: every call through
the account's shared rate budget, with a fresh token, and with one refresh-and-retry
on a 401. Item runs and the periodic resync both go through it, so together they stay
within the limits LaunchDarkly's headers give.

Before each call the gate re-reads the connection, so work already in flight stops
calling once a person disconnects or points the connection at another account or
project; it tells its caller it is alive (`keep_alive`), also while it waits for the
budget; and it keeps the caller's deadline: no call starts after it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings

from connector.connections import services as connections
from connector.connections.models import AuthKind, LaunchDarklyConnection, Status
from connector.launchdarkly import errors
from connector.launchdarkly.budget import RateBudget
from connector.launchdarkly.client import LaunchDarklyClient
from connector.launchdarkly.ratelimit import MAX_WAIT_S, RateLimitInfo, clamp_wait
from connector.launchdarkly.transport import DEFAULT_TIMEOUT
from connector.observability.prometheus import rate_limit_waited

# Fields re-read before every call: whether it may still call, and where to.
_CONNECTION_FIELDS = (
    "status",
    "status_reason",
    "instance",
    "account_id",
    "project_key",
    "auth_kind",
    "access_token_encrypted",
    "refresh_token_encrypted",
    "expires_at",
)


# LaunchDarkly asks clients to "employ jitter and backoff" on 429s
# (https://launchdarkly.com/docs/api#rate-limiting): items rescheduled to the very
# moment a window resets would all call at once and spend the new window at once.
# A wait is lengthened by up to JITTER_FRACTION of itself, at least JITTER_MIN_S
# (LaunchDarkly's windows are 10 s, so most waits are short) and at most JITTER_MAX_S.
JITTER_MIN_S = 1.0
JITTER_FRACTION = 0.1
JITTER_MAX_S = 30.0


def jittered_wait(wait: float) -> float:
    """`wait` seconds (clamped to MAX_WAIT_S) plus random jitter, never beyond MAX_WAIT_S.

    A wait at MAX_WAIT_S already ends before LaunchDarkly's reset (the cap is for wrong
    headers), so it is shortened by the jitter instead: waits for the same reset are
    spread apart either way."""
    wait = clamp_wait(wait)
    jitter = random.uniform(0.0, min(max(wait * JITTER_FRACTION, JITTER_MIN_S), JITTER_MAX_S))
    if wait >= MAX_WAIT_S:
        return MAX_WAIT_S - jitter
    return min(wait + jitter, MAX_WAIT_S)


class MustWait(Exception):
    """LaunchDarkly's rate limit leaves no budget before `until` (epoch seconds: the
    reset plus jitter, never more than MAX_WAIT_S away)."""

    def __init__(self, until: float) -> None:
        super().__init__(until)
        self.until = until


class ConnectionUnusable(Exception):
    """The connection needs a person (reconnect) before any more calls."""


class TargetGone(ConnectionUnusable):
    """The connection was disconnected, or now points at another LaunchDarkly account,
    instance or project: the work was meant for a place it can no longer reach."""


class OutOfTime(Exception):
    """The caller's deadline has passed: no further call may start."""


def target_of(connection: LaunchDarklyConnection) -> tuple[str, str, str]:
    """Where calls through this connection land: (instance, account, project)."""
    return (connection.instance, connection.account_id, connection.project_key)


def _call_timeout() -> tuple[float, float]:
    """(connect, read) seconds for background calls: a read timeout shorter than the
    transport's default bounds how long a hung answer holds a worker."""
    return (DEFAULT_TIMEOUT[0], settings.SYNC_READ_TIMEOUT_S)


class Gate:
    """The calls of one unit of work (an item, a resync) for one connection.

    A wait for the budget up to SYNC_MAX_INLINE_WAIT_S is slept here, in steps short
    enough to `keep_alive(until)` well within SYNC_STALE_CLAIM_S; a longer one (or one
    past the deadline) raises MustWait, for the caller to reschedule its work.
    `keep_alive(None)` also runs before every call. `deadline` is on time.monotonic().
    """

    def __init__(
        self,
        *,
        connection: LaunchDarklyConnection,
        keep_alive: Callable[[float | None], None] | None = None,
        deadline: float | None = None,
    ) -> None:
        self.connection = connection
        self.target = target_of(connection)
        self.keep_alive = keep_alive
        self.deadline = deadline
        self.budget: RateBudget = connections.budget_for(connection)
        self.token = ""
        self.last_info: RateLimitInfo | None = None

    def call(self, route: str, operation: Callable[[Any], Any]) -> Any:
        """`operation(client)` makes one request on `route` (LaunchDarkly's name for
        it, e.g. "GET /api/v2/metrics/{projectKey}"); returns its result."""
        for attempt in (1, 2):
            self._check_still_wanted()
            self._reserve(route)
            self.last_info = None
            try:
                result = operation(self._client())
            except errors.RateLimited as exc:
                self.budget.release(route, self.last_info, rate_limited=True)
                rate_limit_waited(seconds=clamp_wait(exc.retry_after_s), deferred=True)
                raise MustWait(time.time() + jittered_wait(exc.retry_after_s)) from exc
            except errors.Unauthorized:
                self.budget.release(route, self.last_info)
                if attempt == 2 or not self._recover_from_unauthorized():
                    self._give_up_connection()
                continue
            except Exception:
                self.budget.release(route, self.last_info)
                raise
            self.budget.release(route, self.last_info)
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    def _check_still_wanted(self) -> None:
        """Before each call: in time, still wanted, and the connection still the one
        the work began with (a disconnect or reconnect may have happened meanwhile)."""
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise OutOfTime("The item's time limit ran out before LaunchDarkly was done.")
        if self.keep_alive is not None:
            self.keep_alive(None)
        self.connection.refresh_from_db(fields=_CONNECTION_FIELDS)
        if self.connection.status == Status.DISCONNECTED:
            raise TargetGone(self.connection.status_reason or "LaunchDarkly was disconnected.")
        if target_of(self.connection) != self.target:
            raise TargetGone(
                "The connection now points at another LaunchDarkly account or project."
            )
        if not self.connection.is_usable:
            raise ConnectionUnusable(self.connection.status_reason or "Not connected.")

    def _reserve(self, route: str) -> None:
        while (wait := self.budget.acquire(route)) > 0:
            until = time.time() + wait
            past_deadline = self.deadline is not None and time.monotonic() + wait >= self.deadline
            deferred = wait > settings.SYNC_MAX_INLINE_WAIT_S or past_deadline
            rate_limit_waited(seconds=wait, deferred=deferred)
            if deferred:
                raise MustWait(time.time() + jittered_wait(wait))
            self._sleep_until(until)

    def _sleep_until(self, until: float) -> None:
        # Heartbeats a third of the stale-claim limit apart: a waiting worker is alive.
        step = max(settings.SYNC_STALE_CLAIM_S / 3, 0.05)
        while (left := until - time.time()) > 0:
            if self.keep_alive is not None:
                self.keep_alive(until)
            time.sleep(min(left, step))

    def _client(self) -> LaunchDarklyClient:
        try:
            self.token = connections.connection_fresh_access_token(connection=self.connection)
        except connections.ReauthorizationRequired as exc:
            raise ConnectionUnusable(str(exc)) from exc
        # The gate holds the reservation: the client only reports the headers to it.
        return connections.client_for(
            self.connection, token=self.token, on_rate_limit=self._observe, timeout=_call_timeout()
        )

    def _observe(self, info: RateLimitInfo) -> None:
        self.last_info = info

    def _recover_from_unauthorized(self) -> bool:
        """A 401: refresh the OAuth token once (or pick up one another worker just
        refreshed). API tokens cannot be refreshed."""
        if self.connection.auth_kind != AuthKind.OAUTH:
            return False
        try:
            connections.connection_refresh_after_unauthorized(
                connection=self.connection, rejected_token=self.token
            )
        except connections.ReauthorizationRequired:
            return False
        return True

    def _give_up_connection(self) -> None:
        connections.connection_mark_needs_reauth(
            connection=self.connection,
            reason="LaunchDarkly rejected the connection's token (401).",
        )
        raise ConnectionUnusable("LaunchDarkly rejected the token; reconnect to resume.")
