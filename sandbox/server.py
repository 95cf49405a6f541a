"""The sandbox's HTTP server: a threaded HTTP/1.1 server around `SandboxApp`.

One thread per connection with keep-alive, so a delayed ("latency_ms") or slow
answer holds up only its own connection, and a client reusing connections gets
thousands of requests per second from the standard library alone. The transport
faults (truncated, slow, drop; see `faults.py`) are carried out here, because only
the socket layer can half-send a body or hang up.

Use `SandboxServer` to run it in-process (tests, `sandbox.testing`) or from
`manage.py ldsandbox`.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from sandbox.app import Observer, SandboxApp
from sandbox.events import body_limit
from sandbox.messages import Request, Response, api_error
from sandbox.state import SandboxOptions, SandboxState

logger = logging.getLogger(__name__)

# A body nobody will use is still read off the socket up to this size; past it the
# connection is closed instead.
DISCARD_LIMIT = 100_000_000


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    server_version = "LaunchDarklySandbox/1.0"
    disable_nagle_algorithm = True  # headers and body go out without a delayed-ACK stall
    timeout = 120  # idle keep-alive connections are closed eventually
    server: _Server

    def _serve(self) -> None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self._refuse_chunked()
            return
        length = int(self.headers.get("Content-Length") or 0)
        limit = body_limit(self.path)
        read_whole = True
        if limit is not None and length > limit:
            # Not kept: the route's handler answers 413 from Content-Length alone. Read off
            # the socket all the same, so the client hears that answer rather than a reset.
            read_whole = self._discard(length)
            body = b""
        else:
            body = self.rfile.read(length) if length else b""
        request = Request(self.command, self.path, self.headers, body, self.client_address[0])
        response = self.server.app.handle(request)
        if not read_whole:
            response.headers["Connection"] = "close"  # the unread body ends this connection
        if response.delay_s:
            time.sleep(response.delay_s)
        if response.transport_fault == "drop":
            self._hang_up()
        elif response.transport_fault == "truncated":
            self._write(response, body=response.body[: len(response.body) // 2])
            self._hang_up()
        else:
            self._write(response)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def _write(self, response: Response, body: bytes | None = None) -> None:
        self.send_response(response.status)
        if response.content_type:
            self.send_header("Content-Type", response.content_type)
        # The full length even when truncating: that is what makes the answer short.
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(response.body if body is None else body)

    def _refuse_chunked(self) -> None:
        """411: every route here wants Content-Length (LaunchDarkly's event import requires
        it). The chunked body is read and dropped first, as in `_serve`."""
        response = api_error(411, "length_required", "Content-Length is required")
        if not self._discard_chunked():
            response.headers["Connection"] = "close"
        self._write(response)

    def _discard(self, length: int) -> bool:
        """Read `length` body bytes and drop them; past DISCARD_LIMIT read none: False."""
        if length > DISCARD_LIMIT:
            return False
        while length > 0:
            chunk = self.rfile.read(min(length, 1 << 16))
            if not chunk:
                return False
            length -= len(chunk)
        return True

    def _discard_chunked(self) -> bool:
        """Read a chunked body (RFC 9112 section 7.1) and drop it; False when it is
        malformed or longer than DISCARD_LIMIT, and then not all of it was read."""
        total = 0
        while True:
            size_line = self.rfile.readline(1024)
            try:
                size = int(size_line.split(b";", 1)[0], 16)
            except ValueError:
                return False
            total += size
            if size < 0 or total > DISCARD_LIMIT:
                return False
            if size == 0:
                break
            if not self._discard(size + 2):  # the chunk and its CRLF
                return False
        while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
            pass  # trailer fields
        return True

    def _hang_up(self) -> None:
        self.close_connection = True
        self.wfile.flush()
        with contextlib.suppress(OSError):  # the client may already be gone
            self.connection.shutdown(socket.SHUT_RDWR)

    def log_message(self, format: str, *args: object) -> None:
        logger.debug("%s " + format, self.address_string(), *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256  # many clients connecting at once (benchmarks, load tests)
    app: SandboxApp

    def handle_error(self, request: object, client_address: tuple[str, int]) -> None:
        # A client that gave up (read timeout on a "slow" fault) is normal here.
        if isinstance(sys.exc_info()[1], ConnectionError):
            logger.debug("client %s went away", client_address)
        else:
            logger.exception("error serving %s", client_address)


class SandboxServer:
    """The sandbox on a socket. `port=0` picks a free port; see `base_url`."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        options: SandboxOptions | None = None,
        observer: Observer | None = None,
    ) -> None:
        self.state = SandboxState(options or SandboxOptions())
        self.app = SandboxApp(self.state, observer)
        self.httpd = _Server((host, port), _Handler)
        self.httpd.app = self.app
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        assert isinstance(host, str)
        return f"http://{host}:{port}"

    def serve_forever(self) -> None:
        self.httpd.serve_forever(poll_interval=0.2)

    def start(self) -> SandboxServer:
        """Serve on a background daemon thread."""
        self._thread = threading.Thread(target=self.serve_forever, name="ldsandbox", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
