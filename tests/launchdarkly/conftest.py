"""Fixtures for the LaunchDarkly client tests: a fresh sandbox per test, clients
pointed at it, and a tiny local HTTP server for what the sandbox cannot do (redirects,
links to another host)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from connector.launchdarkly.client import LaunchDarklyClient
from sandbox.testing import RunningSandbox


@pytest.fixture(autouse=True)
def source_product(settings) -> None:
    settings.SOURCE_PRODUCT_NAME = "Acme"


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    with RunningSandbox(rate_window_s=2.0) as running:
        yield running


@pytest.fixture
def writer_token(sandbox: RunningSandbox) -> str:
    return sandbox.mint_token("writer")


@pytest.fixture
def make_client(sandbox: RunningSandbox) -> Callable[..., LaunchDarklyClient]:
    """A client for the sandbox; `token` defaults to a fresh writer token."""

    def make(token: str | None = None, **options: Any) -> LaunchDarklyClient:
        options.setdefault("auth_kind", "api_token")
        return LaunchDarklyClient(
            base_url=sandbox.base_url, token=token or sandbox.mint_token("writer"), **options
        )

    return make


@pytest.fixture
def client(make_client, writer_token) -> LaunchDarklyClient:
    return make_client(writer_token)


class FakeServer:
    """Answers every request with one canned (status, headers, JSON body) and records
    the requests it saw (method, path, headers)."""

    def __init__(self) -> None:
        self.answer: tuple[int, dict[str, str], Any] = (200, {}, {})
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                fake.requests.append((self.command, self.path, dict(self.headers)))
                status, headers, body = fake.answer
                payload = json.dumps(body).encode()
                self.send_response(status)
                for name, value in {**headers, "Content-Length": str(len(payload))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            do_POST = do_GET

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def make_fake_server() -> Iterator[Callable[[], FakeServer]]:
    started: list[FakeServer] = []

    def make() -> FakeServer:
        started.append(FakeServer())
        return started[-1]

    yield make
    for server in started:
        server.close()
