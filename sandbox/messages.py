"""Plain request and response values, so the sandbox's logic needs no web framework.

The HTTP layer (`server.py`) turns sockets into `Request` and `Response` into bytes;
everything else is ordinary functions from one to the other, easy to call in tests.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import Message
from typing import Any
from urllib.parse import parse_qs, urlsplit

JSON = "application/json"


@dataclass
class Request:
    method: str
    target: str  # path plus query string, as sent
    headers: Mapping[str, str] | Message  # case-insensitive (email.message.Message)
    body: bytes = b""
    client_ip: str = "127.0.0.1"

    def __post_init__(self) -> None:
        parts = urlsplit(self.target)
        self.path = parts.path
        self.query = {key: values[-1] for key, values in parse_qs(parts.query).items()}

    def header(self, name: str) -> str:
        return self.headers.get(name) or ""

    def json(self) -> Any:
        """The body parsed as JSON; raises ValueError when it is not."""
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, str]:
        parsed = parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)
        return {key: values[-1] for key, values in parsed.items()}


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str | None = JSON
    headers: dict[str, str] = field(default_factory=dict)
    # Set by the fault injector for the HTTP layer: "drop", "truncated" or "slow".
    transport_fault: str | None = None
    delay_s: float = 0.0
    # Facts for the request log that only the handler knows.
    log_extra: dict[str, Any] = field(default_factory=dict)
    json_body: Any = None  # the value that `body` encodes, kept for observers


def json_response(status: int, value: Any, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(value, separators=(",", ":")).encode()
    return Response(status, body, JSON, dict(headers or {}), json_body=value)


def api_error(status: int, code: str, message: str) -> Response:
    """LaunchDarkly's error body: `{code, message, id}` (the id is for their Support)."""
    return json_response(status, {"code": code, "message": message, "id": str(uuid.uuid4())})


def html_response(status: int, html: str, headers: dict[str, str] | None = None) -> Response:
    return Response(status, html.encode(), "text/html; charset=utf-8", dict(headers or {}))


def redirect(location: str) -> Response:
    return Response(302, b"", None, {"Location": location})


class ApiError(Exception):
    """Raised inside handlers to answer with LaunchDarkly's error body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def response(self) -> Response:
        return api_error(self.status, self.code, self.message)
