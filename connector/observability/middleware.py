"""A request id for every request, in its log records and in the answer's header."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from connector.observability.context import log_context, route_of

log = logging.getLogger("connector.request")

HEADER = "X-Request-ID"
# A proxy's id is kept only when it is a plain token (a UUID, hex, a trace id): anything
# else could forge log lines or carry a payload, and is replaced by one of our own.
_SANE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
# Probes and scrapes every few seconds: not worth a log line each.
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def request_id_of(request: HttpRequest) -> str:
    incoming = request.headers.get(HEADER, "")
    if _SANE_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


class RequestContextMiddleware:
    """First in MIDDLEWARE, so that every answer (redirects included) carries the id,
    and every record logged while answering it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request_id_of(request)
        request.request_id = request_id  # type: ignore[attr-defined]
        started = time.monotonic()
        with log_context(request_id=request_id):
            response = self.get_response(request)
            if request.path not in QUIET_PATHS:
                self._log(request, response, started)
        response[HEADER] = request_id
        return response

    def _log(self, request: HttpRequest, response: HttpResponse, started: float) -> None:
        duration_ms = round((time.monotonic() - started) * 1000, 1)
        # The view's tenant scope has ended by now; the workspace decorator left it here.
        workspace = getattr(request, "workspace", None)
        route = route_of(request)
        extra = {
            "method": request.method,
            "route": route,
            "status": response.status_code,
            "duration_ms": duration_ms,
        }
        if workspace is not None:
            extra["workspace"] = workspace.slug
        log.info(
            "%s %s %s %.1fms",
            request.method,
            route,
            response.status_code,
            duration_ms,
            extra=extra,
        )
