"""The request handler: reads one bounded request head, passes the gate, runs a fixed route, answers with the
security headers every response carries. One request per connection (HTTP/1.0 semantics)."""

from __future__ import annotations

import io
import logging
import socket
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any, Protocol

from edge.http.config import DashboardConfig
from edge.http.gate import redact
from edge.http.server import HeadTimeoutError, HeadTooLargeError, read_head

_LOGGER = logging.getLogger(__name__)

MAX_BODY = 4096  # the only bodies are the controls' small JSON objects
STREAM_SEND_BUFFER = 16 * 1024  # bytes; the kernel doubles it

# Sent with every response: nothing is cached, sniffed, framed, embedded cross-origin or leaks a URL as Referer.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


class Dispatcher(Protocol):
    """What a handler serves through (edge.http.dispatch.App): the [http] limits, the gate and routes in dispatch."""

    config: DashboardConfig

    def dispatch(self, h: Handler) -> None: ...


class Handler(BaseHTTPRequestHandler):
    app: Dispatcher  # set on the subclass the sink builds
    server_version = "edge-explainer"
    sys_version = ""
    head_only = False
    leftover = b""

    def version_string(self) -> str:
        return self.server_version

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # the head is read from the socket with a deadline, below; this file is never used
        self.rfile = io.BytesIO()

    def handle(self) -> None:
        try:
            self.handle_one_request()
        except OSError as e:  # reset, broken pipe, timeout while answering: the client's business
            _LOGGER.debug("client %s: %s", self.client_address[0], e.__class__.__name__)

    def handle_one_request(self) -> None:
        self.close_connection = True
        self.request_version, self.requestline, self.command = "HTTP/1.0", "", ""
        config = self.app.config
        try:
            head, self.leftover = read_head(self.connection, time.monotonic() + config.head_timeout_s,
                                            config.max_head_bytes)
        except HeadTooLargeError:
            self._bare(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)
            return
        except HeadTimeoutError:
            self._bare(HTTPStatus.REQUEST_TIMEOUT)
            return
        self.rfile = io.BytesIO(head)
        self.raw_requestline = self.rfile.readline(65537)
        if not self.parse_request():
            return
        self.connection.settimeout(config.client_timeout_s)
        self.app.dispatch(self)

    def _bare(self, status: HTTPStatus) -> None:
        """A minimal answer to a request whose head was refused, without waiting for a slow reader."""
        _LOGGER.debug("client %s: %d %s", self.client_address[0], status.value, status.phrase)
        self.connection.settimeout(1.0)
        self.connection.sendall(f"HTTP/1.0 {status.value} {status.phrase}\r\nContent-Length: 0\r\n"
                                "Connection: close\r\n\r\n".encode())

    def start_stream(self) -> None:
        """A long-lived answer: a small send buffer, so a viewer that stops reading blocks the next write within a
        few frames (the kernel's autotuned buffer held minutes of events), and each write's deadline drops it."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, STREAM_SEND_BUFFER)
        self.connection.settimeout(self.app.config.client_timeout_s)  # sendall: the deadline of a whole write

    def read_body(self) -> bytes:
        """The request body (at most MAX_BODY bytes), read within the head deadline again."""
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 <= length <= MAX_BODY:
            raise ValueError(f"body of {length} bytes")
        body = bytearray(self.leftover[:length])
        deadline = time.monotonic() + self.app.config.head_timeout_s
        while len(body) < length:
            self.connection.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = self.connection.recv(length - len(body))
            if not chunk:
                raise ConnectionAbortedError("closed before the end of the body")
            body += chunk
        return bytes(body)

    def end_headers(self) -> None:
        for name, value in SECURITY_HEADERS.items():
            self.send_header(name, value)
        super().end_headers()

    def send_body(self, content_type: str, body: bytes, status: HTTPStatus = HTTPStatus.OK,
                  headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if not self.head_only:
            self.wfile.write(body)

    def fail(self, status: HTTPStatus, message: str, headers: dict[str, str] | None = None) -> None:
        """A plain-text error (nothing of the request is echoed back)."""
        self.send_body("text/plain; charset=utf-8", f"{status.value} {message}\n".encode(), status, headers)

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        self.log_message('"%s" %s', self.requestline, code)

    def log_message(self, format: str, *args: Any) -> None:
        _LOGGER.debug("%s %s", self.client_address[0], redact(format % args))
