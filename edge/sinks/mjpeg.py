"""A browser view: an MJPEG-over-HTTP stream of the live overlay and the current prediction as JSON.

Only fixed routes are served (/, /stream.mjpg, /frame.jpg, /prediction.json); nothing maps a request to a file.
It listens on 127.0.0.1 unless configured otherwise, and then requires an access token. Each client waits for the
newest frame, so a slow client skips frames instead of slowing the loop, and a stalled one times out.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import threading
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from edge.jpeg import encode_rgb
from edge.sinks.base import Result, SinkError
from edge.sinks.record import make_record

_LOGGER = logging.getLogger(__name__)

_BOUNDARY = "edgeframe"
_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>edge-explainer</title>
<style>body{margin:0;background:#111;color:#eee;font:16px sans-serif}img{display:block;max-width:100%%}
#p{padding:6px}</style></head>
<body><img id="v" src="stream.mjpg%(query)s" alt="live overlay"><div id="p">waiting for a prediction</div>
<script>
async function poll(){try{const r=await fetch("prediction.json%(query)s");if(r.ok){const j=await r.json();
document.getElementById("p").textContent=j.label+" "+(100*j.confidence).toFixed(0)+"%% \u00b7 frame "+j.frame+
" \u00b7 "+j.fps+" fps";}}catch(e){}setTimeout(poll,500);}poll();
</script></body></html>
"""


@dataclass(frozen=True)
class MjpegConfig:
    """[http]: the browser view."""

    enabled: bool = field(default=False, metadata={"doc": "serve the browser view"})
    host: str = field(default="127.0.0.1", metadata={"doc": "address to listen on; non-loopback needs token"})
    port: int = field(default=8080, metadata={"range": (0, 65535), "doc": "TCP port; 0 = any free port"})
    token: str = field(default="", metadata={"doc": "access token (?token=... or Authorization: Bearer ...)"})
    max_clients: int = field(default=4, metadata={"range": (1, 64), "doc": "simultaneous streams"})
    jpeg_quality: int = field(default=80, metadata={"range": (10, 100), "doc": "JPEG quality of the stream"})
    client_timeout_s: float = field(default=10.0, metadata={"range": (0.5, 600.0), "doc": "drop stalled clients"})


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Latest:
    """The newest JPEG and record; clients wait on it for the next one."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.jpeg = b""
        self.record: dict[str, Any] = {}
        self.seq = 0
        self.closed = False
        self.clients = 0

    def publish(self, jpeg: bytes, record: dict[str, Any]) -> None:
        with self.cond:
            self.jpeg, self.record, self.seq = jpeg, record, self.seq + 1
            self.cond.notify_all()

    def wait_newer(self, seq: int, timeout: float) -> tuple[int, bytes] | None:
        with self.cond:
            self.cond.wait_for(lambda: self.seq != seq or self.closed, timeout)
            if self.closed or self.seq == seq:
                return None
            return self.seq, self.jpeg


class MjpegSink:
    """The HTTP server; handle() encodes the overlay once and publishes it to every client."""

    name = "http"

    def __init__(self, config: MjpegConfig) -> None:
        if not is_loopback(config.host) and not config.token:
            raise SinkError(f"[http] host {config.host!r} is not loopback: set [http] token to allow it")
        self.config = config
        self.latest = _Latest()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1] if self._server else self.config.port

    @property
    def url(self) -> str:
        return f"http://{self.config.host}:{self.port}/"

    def open(self) -> None:
        handler = type("Handler", (_Handler,), {"sink": self, "timeout": self.config.client_timeout_s})
        try:
            self._server = ThreadingHTTPServer((self.config.host, self.config.port), handler)
        except OSError as e:
            raise SinkError(f"[http] cannot listen on {self.config.host}:{self.config.port}: {e.strerror}") from e
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.2,), name="http", daemon=True)
        self._thread.start()
        _LOGGER.info("browser view at %s", self.url)

    def handle(self, result: Result) -> None:
        data = encode_rgb(result.overlay, self.config.jpeg_quality)
        if data is not None:
            self.latest.publish(data, make_record(result))

    def close(self) -> None:
        with self.latest.cond:
            self.latest.closed = True
            self.latest.cond.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class _Handler(BaseHTTPRequestHandler):
    sink: MjpegSink
    server_version = "edge-explainer"

    def log_message(self, format: str, *args: Any) -> None:
        _LOGGER.debug("%s " + format, self.client_address[0], *args)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if not self._authorised(url.query):
            self.send_error(HTTPStatus.UNAUTHORIZED, "token required")
            return
        routes = {"/": self._page, "/stream.mjpg": self._stream, "/frame.jpg": self._frame,
                  "/prediction.json": self._prediction}
        route = routes.get(url.path)
        if route is None:
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        route()

    def _authorised(self, query: str) -> bool:
        token = self.sink.config.token
        if not token:
            return True
        given = parse_qs(query).get("token", [""])[0]
        header = self.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            given = header[len("Bearer "):]
        return hmac.compare_digest(given.encode(), token.encode())

    def _send(self, content_type: str, body: bytes) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _page(self) -> None:
        token = self.sink.config.token
        query = f"?token={token}" if token else ""
        self._send("text/html; charset=utf-8", (_PAGE % {"query": query}).encode())

    def _frame(self) -> None:
        latest = self.sink.latest
        got = latest.wait_newer(0, self.sink.config.client_timeout_s) if not latest.jpeg else (latest.seq, latest.jpeg)
        if got is None:
            self.send_error(HTTPStatus.SERVICE_UNAVAILABLE, "no frame yet")
            return
        self._send("image/jpeg", got[1])

    def _prediction(self) -> None:
        self._send("application/json", json.dumps(self.sink.latest.record).encode())

    def _stream(self) -> None:
        latest = self.sink.latest
        with latest.cond:
            full = latest.clients >= self.sink.config.max_clients
            if not full:
                latest.clients += 1
        if full:
            self.send_error(HTTPStatus.SERVICE_UNAVAILABLE, "too many viewers")
            return
        try:
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={_BOUNDARY}")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self._stream_frames()
        except OSError as e:  # the client went away or stalled past the socket timeout
            _LOGGER.debug("stream client %s gone: %s", self.client_address[0], e)
        finally:
            with latest.cond:
                latest.clients -= 1

    def _stream_frames(self) -> None:
        seq = 0
        while True:
            got = self.sink.latest.wait_newer(seq, self.sink.config.client_timeout_s)
            if got is None:
                if self.sink.latest.closed:
                    return
                continue
            seq, jpeg = got
            self.wfile.write(f"--{_BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                             .encode() + jpeg + b"\r\n")
            self.wfile.flush()
