"""Typed LaunchDarkly errors: callers decide by type (retry, fail, re-authorise), never
by matching strings.

`retryable` says whether the same request may succeed later without any change: the
network, a server error, a garbled answer or a rate limit. Everything else needs a
different request, a different token or a person.
"""

from __future__ import annotations


class LaunchDarklyError(Exception):
    """Anything that went wrong talking to LaunchDarkly.

    `status` is the HTTP status when an answer arrived, `code` LaunchDarkly's error code
    (`{"code", "message", "id"}` bodies), `request_id` that body's `id`, which
    LaunchDarkly Support asks for.
    """

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id

    def __str__(self) -> str:
        details = " ".join(str(part) for part in (self.status, self.code) if part is not None)
        return f"{self.message} ({details})" if details else self.message


class TransportError(LaunchDarklyError):
    """No answer: connection refused, reset or dropped. A write may still have happened."""

    retryable = True


class Timeout(TransportError):
    """Connecting or waiting for the answer took longer than the client's timeout."""


class MalformedResponse(LaunchDarklyError):
    """An answer that is not the JSON LaunchDarkly sends: an HTML page from a proxy,
    a body cut short, invalid JSON. Usually a proxy or edge in trouble, so retryable."""

    retryable = True


class ServerError(LaunchDarklyError):
    """A 5xx answer."""

    retryable = True


class RateLimited(LaunchDarklyError):
    """A 429. `retry_after_s` is how long to wait (always > 0), `reset_at` the end of
    LaunchDarkly's rate-limit window in epoch seconds when it said so."""

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        retry_after_s: float,
        reset_at: float | None = None,
        status: int | None = 429,
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, status=status, code=code, request_id=request_id)
        self.retry_after_s = retry_after_s
        self.reset_at = reset_at


class Unauthorized(LaunchDarklyError):
    """401: the token is unknown, expired or revoked."""


class Forbidden(LaunchDarklyError):
    """403: the token is valid but its role does not allow this."""


class NotFound(LaunchDarklyError):
    """404."""


class Conflict(LaunchDarklyError):
    """409: for a create, the key exists already; for a patch, a concurrent change."""


class ConcurrentChange(Conflict):
    """409 `optimistic_locking_error`: another change to the resource landed between our
    read and our write. LaunchDarkly says to retry: re-read, re-diff, re-send. The same
    request may succeed a moment later, so it is retryable."""

    retryable = True


class InvalidRequest(LaunchDarklyError):
    """400 or 422: LaunchDarkly refused the request's content; `message` and `code`
    are LaunchDarkly's own, worth showing to the person who asked for it."""


class UnexpectedStatus(LaunchDarklyError):
    """Any other status the client has no meaning for (405, 410, 413, ...)."""


class UnexpectedRedirect(LaunchDarklyError):
    """A 3xx answer, or a pagination link to another host. The client never follows
    them, so a token is never sent to a host other than the configured one."""


class OAuthError(LaunchDarklyError):
    """The OAuth token or revocation endpoint refused; `error` is the RFC 6749 §5.2 code
    (`invalid_client`, `invalid_scope`, ...)."""

    def __init__(
        self,
        message: str,
        *,
        error: str,
        status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, status=status, code=error, request_id=request_id)
        self.error = error


class InvalidGrant(OAuthError):
    """`invalid_grant`: the authorization code or refresh token is used, expired or
    revoked. Only a new authorisation by the customer can fix the connection."""
