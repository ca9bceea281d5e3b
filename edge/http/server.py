"""The HTTP server's limits: connections in all, the time and size a request head may take, quiet resets.

One thread and one descriptor per connection is what ThreadingHTTPServer does; here the number of connections is
capped (more are answered 503 and closed at once, on the accepting thread, without a thread of their own), the whole
request head must arrive within a deadline and a byte budget (not a per-recv timeout, which a client sending a byte
every few seconds never trips), and a client that resets its connection is one debug line, not a traceback.
"""

from __future__ import annotations

import logging
import socket
import sys
import threading
import time
from http.server import ThreadingHTTPServer
from typing import Any

_LOGGER = logging.getLogger(__name__)

_BUSY = b"HTTP/1.0 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class HeadTooLargeError(Exception):
    """The request line and headers exceed the byte budget."""


class HeadTimeoutError(Exception):
    """The request head did not arrive within the deadline."""


def read_head(sock: socket.socket, deadline: float, budget: int) -> tuple[bytes, bytes]:
    """(request line + headers up to the blank line, any bytes after it), read before deadline (time.monotonic)
    and within budget bytes; raises HeadTimeoutError, HeadTooLargeError, or ConnectionError if the client hangs up."""
    buffer = bytearray()
    while True:
        end = _head_end(buffer)
        if end and end <= budget:
            return bytes(buffer[:end]), bytes(buffer[end:])
        if end or len(buffer) > budget:
            raise HeadTooLargeError(f"request head over {budget} bytes")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise HeadTimeoutError("request head too slow")
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(4096)
        except TimeoutError as e:
            raise HeadTimeoutError("request head too slow") from e
        if not chunk:
            raise ConnectionAbortedError("closed before the end of the request head")
        buffer += chunk


def _head_end(buffer: bytearray) -> int:
    """Index just past the blank line that ends a head (CRLF or bare LF), or 0."""
    ends = [i + len(mark) for mark in (b"\r\n\r\n", b"\n\n") if (i := buffer.find(mark)) >= 0]
    return min(ends) if ends else 0


class BoundedHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer with a cap on open connections and one-line logging of client errors."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 64  # a burst of legitimate connects waits in the kernel, not refused

    def __init__(self, address: tuple[str, int], handler: Any, max_connections: int) -> None:
        self.max_connections = max_connections
        self.active = 0
        self.refused = 0
        self._count_lock = threading.Lock()
        self._last_refusal_log = 0.0
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._count_lock:
            full = self.active >= self.max_connections
            if not full:
                self.active += 1
        if full:
            self._refuse(request)
            return
        try:
            super().process_request(request, client_address)
        except Exception:
            self._release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._release()

    def _release(self) -> None:
        with self._count_lock:
            self.active -= 1

    def _refuse(self, request: socket.socket) -> None:
        self.refused += 1
        try:
            request.setblocking(False)
            request.send(_BUSY)  # a fresh socket's buffer takes it at once; never waits
        except OSError:
            pass
        self.shutdown_request(request)
        now = time.monotonic()
        if now - self._last_refusal_log > 60:
            self._last_refusal_log = now
            _LOGGER.warning("browser view: %d connections open (the cap), refusing more (%d so far)",
                            self.max_connections, self.refused)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client's network error is one debug line; anything else is a bug and keeps its traceback."""
        error = sys.exc_info()[1]
        host = client_address[0] if isinstance(client_address, tuple) else client_address
        if isinstance(error, OSError):
            _LOGGER.debug("client %s: %s", host, error.__class__.__name__)
        else:
            _LOGGER.exception("browser view: request from %s failed", host)
