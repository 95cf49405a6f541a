"""HTTP to a LaunchDarkly host, shared by the REST, event import and OAuth clients.

Everything that must hold for every call lives here: our User-Agent and API version,
connect and read timeouts, never following a redirect, rate-limit headers reported,
and requests' exceptions and 3xx/429/5xx answers turned into our typed errors. What a
4xx means depends on the endpoint, so callers map those.

Nothing here logs headers or bodies: the token must never reach a log.
"""

from __future__ import annotations

import logging
import re
import time
import unicodedata
from collections.abc import Callable
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from django.conf import settings
from requests.exceptions import ChunkedEncodingError, ContentDecodingError

import connector
from connector.launchdarkly.errors import (
    MalformedResponse,
    RateLimited,
    ServerError,
    Timeout,
    TransportError,
    UnexpectedRedirect,
)
from connector.launchdarkly.ratelimit import RateLimitInfo, parse_rate_limit_headers
from connector.observability.launchdarkly import Call, launchdarkly_call

logger = logging.getLogger(__name__)

# LaunchDarkly: pin the REST API version on every request, or the token's default applies.
API_VERSION = "20240415"
# (connect, read) seconds; connect just over a multiple of 3 s, TCP's retransmit window.
DEFAULT_TIMEOUT: tuple[float, float] = (3.05, 20.0)

RateLimitCallback = Callable[[RateLimitInfo], None]


# RFC 9110 §5.6.2 `tchar`: what a User-Agent product token may hold.
_NOT_TCHAR = re.compile(r"[^!#$%&'*+\-.^_`|~0-9A-Za-z]")
# When nothing of SOURCE_PRODUCT_NAME is left, the header still has a product.
_FALLBACK_SOURCE = "Partner"


def user_agent(product: str) -> str:
    """`{LaunchDarkly product}-{source product}-int/{version}`, the form partners use so
    LaunchDarkly can tell where traffic comes from (e.g. `MetricImport-Acme-int/1.4.0`).

    The only form LaunchDarkly's partners are known to send is the event import's
    `MetricImport-<Partner>-int/<version>` (Snowplow's LaunchDarkly tag), so the event
    import client keeps `MetricImport`. For REST calls LaunchDarkly documents no
    User-Agent at all (its partner guidance names none), so the REST and OAuth clients
    send the same shape with `MetricSync`: one product per kind of traffic, and metric
    definitions stay apart from event imports from the same partner.

    The whole value must be one RFC 9110 product (`token/token`), or LaunchDarkly reads
    `Acme Analytics` as two products and `requests` refuses a line break outright."""
    return f"{product}-{_source_token(settings.SOURCE_PRODUCT_NAME)}-int/{connector.__version__}"


def _source_token(name: str) -> str:
    """The source product's name as a token: accents dropped ("Crème" -> "Creme"), every
    other character a token cannot hold (spaces, brackets, non-Latin) left out."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return _NOT_TCHAR.sub("", ascii_name) or _FALLBACK_SOURCE


class Transport:
    """Sends requests to one LaunchDarkly host and nowhere else."""

    def __init__(
        self,
        *,
        base_url: str,
        product: str,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        session: requests.Session | None = None,
        on_rate_limit: RateLimitCallback | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        parts = urlsplit(self.base_url)
        self._origin = (parts.scheme, parts.netloc)
        self._timeout = timeout
        # Headers go on each request, not on the session, so a session shared between
        # clients (for its connection pool) never carries one client's token.
        self._session = session or requests.Session()
        self._headers = {"User-Agent": user_agent(product), "LD-API-Version": API_VERSION}
        self._on_rate_limit = on_rate_limit

    def url(self, path_or_href: str) -> str:
        """The absolute URL of a path or of a link LaunchDarkly sent (host-relative);
        refuses any other host, so a token is never sent elsewhere."""
        url = urljoin(self.base_url + "/", path_or_href)
        parts = urlsplit(url)
        if (parts.scheme, parts.netloc) != self._origin:
            raise UnexpectedRedirect(
                f"refusing to follow a link to {parts.scheme}://{parts.netloc}"
            )
        return url

    def send(
        self, method: str, path: str, *, headers: dict[str, str], **kwargs: Any
    ) -> requests.Response:
        """Send one request; answers 2xx and 4xx, raises for everything else.

        `kwargs` go to `requests.Session.request` (params, json, data). Each call is
        logged once and counted (connector.observability.launchdarkly).
        """
        with launchdarkly_call(method, path) as call:
            return self._send(method, path, call=call, headers=headers, **kwargs)

    def _send(
        self, method: str, path: str, *, call: Call, headers: dict[str, str], **kwargs: Any
    ) -> requests.Response:
        url = self.url(path)
        where = f"{method} {urlsplit(url).path}"
        try:
            response = self._session.request(
                method,
                url,
                headers={**self._headers, **headers},
                timeout=self._timeout,
                allow_redirects=False,
                **kwargs,
            )
        except requests.Timeout as exc:  # before ConnectionError: ConnectTimeout is both
            raise Timeout(f"{where}: timed out") from exc
        except (ChunkedEncodingError, ContentDecodingError) as exc:
            # The answer started but its body was cut short or garbled. Like invalid
            # JSON, the request may or may not have been applied.
            raise MalformedResponse(f"{where}: the answer's body was cut short") from exc
        except requests.ConnectionError as exc:
            raise TransportError(f"{where}: connection failed ({type(exc).__name__})") from exc
        status = response.status_code
        rate_limit = parse_rate_limit_headers(response.headers, time.time())
        call.answered(status, rate_limit)
        if self._on_rate_limit is not None:
            self._on_rate_limit(rate_limit)
        if rate_limit.absurd:
            # Not a rate limit anyone means: believing it would park work for years.
            raise MalformedResponse(
                f"{where}: answered {status} with an absurd rate-limit header "
                f"({rate_limit.absurd})",
                status=status,
            )
        if 300 <= status < 400:
            raise UnexpectedRedirect(f"{where}: answered {status}, not followed", status=status)
        if status == 429:
            message, code, request_id = error_fields(response)
            raise RateLimited(
                message or f"{where}: rate limited",
                retry_after_s=rate_limit.wait_s(time.time()),
                reset_at=rate_limit.reset_at,
                code=code,
                request_id=request_id,
            )
        if status >= 500:
            if error_body(response) is None:
                raise MalformedResponse(f"{where}: answered {status} without JSON", status=status)
            message, code, request_id = error_fields(response)
            raise ServerError(
                message or f"{where}: answered {status}",
                status=status,
                code=code,
                request_id=request_id,
            )
        return response


def json_body(response: requests.Response) -> Any:
    """The answer's JSON; MalformedResponse for HTML, truncated or invalid JSON."""
    try:
        return response.json()
    except ValueError as exc:  # requests' JSONDecodeError is a ValueError
        raise MalformedResponse(
            f"answer {response.status_code} is not valid JSON", status=response.status_code
        ) from exc


def error_body(response: requests.Response) -> dict[str, Any] | None:
    """The answer's JSON object, or None when it has none (an HTML page, say)."""
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def error_fields(response: requests.Response) -> tuple[str | None, str | None, str | None]:
    """`message`, `code` and `id` of LaunchDarkly's error body `{code, message, id}`,
    each None when absent or not a string."""
    body = error_body(response) or {}
    return _string(body.get("message")), _string(body.get("code")), _string(body.get("id"))


def _string(value: Any) -> str | None:
    return value if isinstance(value, str) else None
