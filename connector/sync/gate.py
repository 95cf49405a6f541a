"""The one way background work calls LaunchDarkly for a connection: every call through
the account's shared rate budget, with a fresh token, and with one refresh-and-retry
on a 401. Item runs and the periodic resync both go through it, so together they stay
within the limits LaunchDarkly's headers give.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.conf import settings

from connector.connections.models import AuthKind, LaunchDarklyConnection
from connector.launchdarkly import errors
from connector.launchdarkly.ratelimit import RateLimitInfo
from connector.sync.budget import RateBudget


class MustWait(Exception):
    """LaunchDarkly's rate limit leaves no budget before `until` (epoch seconds)."""

    def __init__(self, until: float) -> None:
        super().__init__(until)
        self.until = until


class ConnectionUnusable(Exception):
    """The connection needs a person (reconnect) before any more calls."""


def budget_for(connection: LaunchDarklyConnection) -> RateBudget:
    """LaunchDarkly limits per account: every connection to one account shares this."""
    return RateBudget(connection.account_id or f"connection-{connection.pk}")


def _call_timeout() -> tuple[float, float]:
    """(connect, read) seconds for background calls: a read timeout shorter than the
    transport's default bounds how long a hung answer holds a worker."""
    from connector.launchdarkly.transport import DEFAULT_TIMEOUT

    return (DEFAULT_TIMEOUT[0], settings.SYNC_READ_TIMEOUT_S)


class Gate:
    """The calls of one unit of work (an item, a resync) for one connection.

    A wait for the budget up to SYNC_MAX_INLINE_WAIT_S is slept here (after telling
    `on_wait` until when, for status pages); a longer one raises MustWait, for the
    caller to reschedule its work.
    """

    def __init__(
        self,
        *,
        connection: LaunchDarklyConnection,
        on_wait: Callable[[float], None] | None = None,
    ) -> None:
        self.connection = connection
        self.on_wait = on_wait
        self.budget = budget_for(connection)
        self.token = ""
        self.last_info: RateLimitInfo | None = None

    def call(self, route: str, operation: Callable[[Any], Any]) -> Any:
        """`operation(client)` makes one request on `route` (LaunchDarkly's name for
        it, e.g. "GET /api/v2/metrics/{projectKey}"); returns its result."""
        for attempt in (1, 2):
            self._reserve(route)
            self.last_info = None
            try:
                result = operation(self._client())
            except errors.RateLimited as exc:
                self.budget.release(route, self.last_info, rate_limited=True)
                raise MustWait(time.time() + exc.retry_after_s) from exc
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

    def _reserve(self, route: str) -> None:
        while (wait := self.budget.acquire(route)) > 0:
            until = time.time() + wait
            if wait > settings.SYNC_MAX_INLINE_WAIT_S:
                raise MustWait(until)
            if self.on_wait is not None:
                self.on_wait(until)
            time.sleep(wait)

    def _client(self):
        from connector.connections import services as connections
        from connector.launchdarkly import instances
        from connector.launchdarkly.client import LaunchDarklyClient

        try:
            self.token = connections.connection_fresh_access_token(connection=self.connection)
        except connections.ReauthorizationRequired as exc:
            raise ConnectionUnusable(str(exc)) from exc
        return LaunchDarklyClient(
            base_url=instances.api_base_url(self.connection.instance),
            token=self.token,
            auth_kind=self.connection.auth_kind,
            on_rate_limit=self._observe,
            timeout=_call_timeout(),
        )

    def _observe(self, info: RateLimitInfo) -> None:
        self.last_info = info

    def _recover_from_unauthorized(self) -> bool:
        """A 401: refresh the OAuth token once (or pick up one another worker just
        refreshed). API tokens cannot be refreshed."""
        from connector.connections import services as connections

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
        from connector.connections import services as connections

        connections.connection_mark_needs_reauth(
            connection=self.connection,
            reason="LaunchDarkly rejected the connection's token (401).",
        )
        raise ConnectionUnusable("LaunchDarkly rejected the token; reconnect to resume.")
