"""The view's fixed routes: the page and its files, the MJPEG stream, one frame, the newest record."""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from urllib.parse import SplitResult, parse_qs

from edge.http.dispatch import App
from edge.http.handler import Handler

_LOGGER = logging.getLogger(__name__)

BOUNDARY = "edgeframe"
PAGE_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
               "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")


def page(app: App, h: Handler, url: SplitResult) -> None:
    headers = {"Content-Security-Policy": PAGE_POLICY}
    if app.gate.token:
        headers["Set-Cookie"] = app.gate.set_cookie()
    h.send_body("text/html; charset=utf-8", app.assets["index.html"], headers=headers)


def script(app: App, h: Handler, url: SplitResult) -> None:
    h.send_body("text/javascript; charset=utf-8", app.assets["app.js"])


def style(app: App, h: Handler, url: SplitResult) -> None:
    h.send_body("text/css; charset=utf-8", app.assets["style.css"])


def query_int(url: SplitResult, name: str) -> int | None:
    """An integer query parameter, or None if absent or not an integer."""
    value = parse_qs(url.query).get(name, [""])[0]
    return int(value) if value.isdigit() and len(value) < 12 else None


def frame(app: App, h: Handler, url: SplitResult) -> None:
    """The newest frame, or ?seq=N while it is among the last few or the last served; X-Frame-Seq says which one it
    is."""
    seq = query_int(url, "seq")
    item = app.hub.get(seq) if seq is not None else (app.hub.newest or
                                                     app.hub.wait_newer(0, app.config.client_timeout_s))
    if item is None:
        h.fail(HTTPStatus.NOT_FOUND if seq is not None else HTTPStatus.SERVICE_UNAVAILABLE, "no such frame")
        return
    app.hub.serve(item)
    h.send_body("image/jpeg", item.jpeg, headers={"X-Frame-Seq": str(item.seq)})


def prediction(app: App, h: Handler, url: SplitResult) -> None:
    """The newest record, or ?seq=N's while it is among the last few."""
    seq = query_int(url, "seq")
    item = app.hub.get(seq) if seq is not None else app.hub.newest
    if item is None and seq is not None:
        h.fail(HTTPStatus.NOT_FOUND, "no such frame")
        return
    h.send_body("application/json", json.dumps(item.record if item else {}).encode())


def stream(app: App, h: Handler, url: SplitResult) -> None:
    if not app.hub.join_stream(app.config.max_clients):
        h.fail(HTTPStatus.SERVICE_UNAVAILABLE, "too many viewers")
        return
    try:
        h.start_stream()
        h.send_response(HTTPStatus.OK)
        h.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        h.end_headers()
        if not h.head_only:
            _stream_frames(app, h)
    except OSError as e:  # the client went away or stalled past the socket timeout
        _LOGGER.debug("stream client %s gone: %s", h.client_address[0], e.__class__.__name__)
    finally:
        app.hub.leave_stream()


def _stream_frames(app: App, h: Handler) -> None:
    seq = 0
    while True:
        item = app.hub.wait_newer(seq, app.config.client_timeout_s)
        if item is None:
            if app.hub.closed:
                return
            continue
        seq = item.seq
        h.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(item.jpeg)}\r\n"
                      f"X-Frame-Seq: {seq}\r\n\r\n".encode() + item.jpeg + b"\r\n")
        h.wfile.flush()
