"""The dashboard's routes: frame records as server-sent events, state and controls, health, events, heatmaps and
the snapshot. Changing state is a POST with a JSON body (which another site's page cannot send without the same-origin
checks of the gate refusing it first), and only when [http] controls is on."""

from __future__ import annotations

import io
import json
import logging
import time
import zipfile
from http import HTTPStatus
from urllib.parse import SplitResult, parse_qs

from edge.http.board import health
from edge.http.dispatch import App
from edge.http.handler import Handler
from edge.http.hub import Published
from edge.http.routes import query_int
from edge.jpeg import encode_rgb
from edge.safe_io import loads_json

_LOGGER = logging.getLogger(__name__)

KEEPALIVE_S = 5.0  # an idle (paused) event stream still writes this often, so a dead viewer is noticed
EVENT_STREAM_SPANS = 2  # an event stream lasts this many [http] client_timeout_s


def _json(h: Handler, value: object, status: HTTPStatus = HTTPStatus.OK) -> None:
    h.send_body("application/json", json.dumps(value).encode(), status)


def events(app: App, h: Handler, url: SplitResult) -> None:
    """text/event-stream: one `frame` event per published frame, id = its sequence number, data = its record; it
    ends after EVENT_STREAM_SPANS x client_timeout_s and the page reconnects."""
    if not app.hub.join_stream(app.config.max_clients):
        h.fail(HTTPStatus.SERVICE_UNAVAILABLE, "too many viewers")
        return
    try:
        h.start_stream()
        h.send_response(HTTPStatus.OK)
        h.send_header("Content-Type", "text/event-stream")
        h.end_headers()
        if h.head_only:
            return
        h.wfile.write(b"retry: 200\n\n")
        seq = 0
        # Small records fill no buffer for minutes, so a viewer that never reads is never blocked: each stream ends
        # after a while instead, and a page's EventSource reconnects at once (the retry above).
        ends = time.monotonic() + EVENT_STREAM_SPANS * app.config.client_timeout_s
        while not app.hub.closed and time.monotonic() < ends:
            item = app.hub.wait_newer(seq, min(KEEPALIVE_S, app.config.client_timeout_s))
            if item is None:
                h.wfile.write(b": idle\n\n")
            else:
                seq = item.seq
                h.wfile.write(f"id: {seq}\nevent: frame\ndata: {json.dumps(item.record)}\n\n".encode())
            h.wfile.flush()
    except OSError as e:  # the viewer went away or stalled past the socket timeout
        _LOGGER.debug("event client %s gone: %s", h.client_address[0], e.__class__.__name__)
    finally:
        app.hub.leave_stream()


def _state(app: App) -> dict[str, object]:
    live = app.board.live
    return {"controls": app.board.controls, "settings": live.get().as_dict() if live else None,
            "classes": list(app.board.about.get("classes", ())), "methods": list(live.methods) if live else [],
            "model": app.board.about.get("model", "")}


def state(app: App, h: Handler, url: SplitResult) -> None:
    _json(h, _state(app))


def controls(app: App, h: Handler, url: SplitResult) -> None:
    """Apply a JSON object of settings (method, target, alpha, threshold, overlay, paused); answer the new state."""
    if not app.board.controls or app.board.live is None:
        h.fail(HTTPStatus.FORBIDDEN, "read-only view ([http] controls = false)")
        return
    if h.headers.get_content_type() != "application/json":
        h.fail(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send application/json")
        return
    try:
        changes = loads_json(h.read_body())
        if not isinstance(changes, dict):
            raise ValueError("expected a JSON object")
        app.board.live.update(changes)
    except (ValueError, UnicodeDecodeError) as e:
        h.fail(HTTPStatus.BAD_REQUEST, str(e)[:200])
        return
    _LOGGER.info("browser view: settings changed by %s: %s", h.client_address[0],
                 ", ".join(f"{k}={v}" for k, v in changes.items()))
    _json(h, _state(app))


def health_route(app: App, h: Handler, url: SplitResult) -> None:
    newest = app.hub.newest
    figures = health(newest.record if newest else {}, app.board.about, app.board.started, app.hub.streams)
    _json(h, {**figures, **(app.board.service() if app.board.service else {})})


def event_list(app: App, h: Handler, url: SplitResult) -> None:
    _json(h, app.board.events.listing())


def event_image(app: App, h: Handler, url: SplitResult) -> None:
    """?id=N&kind=overlay|frame: one kept event's JPEG."""
    event_id, kind = query_int(url, "id"), parse_qs(url.query).get("kind", ["overlay"])[0]
    event = app.board.events.get(event_id) if event_id is not None else None
    if event is None or kind not in ("overlay", "frame"):
        h.fail(HTTPStatus.NOT_FOUND, "no such event")
        return
    h.send_body("image/jpeg", event.overlay_jpeg if kind == "overlay" else event.frame_jpeg)


def heatmap(app: App, h: Handler, url: SplitResult) -> None:
    """?class=I: the class's mean heatmap since start (404 before it was ever predicted)."""
    index = query_int(url, "class")
    heatmaps = app.board.heatmaps
    image = app.images.run(lambda: heatmaps.image(index), app.config.client_timeout_s) if index is not None else None
    if image is None:
        h.fail(HTTPStatus.NOT_FOUND, "no heatmap for that class yet")
        return
    h.send_body("image/png", image)


def heatmap_list(app: App, h: Handler, url: SplitResult) -> None:
    counts = app.board.heatmaps.listing()
    classes = list(app.board.about.get("classes", ())) or [str(i) for i in range(len(counts))]
    means = app.board.heatmaps.faithfulness_means()  # [faithfulness]: running means per class, when scored
    _json(h, [{"class": i, "name": name, "frames": n, **({"faithfulness": means[name]} if name in means else {})}
              for i, (name, n) in enumerate(zip(classes, counts, strict=False))])


def snapshot(app: App, h: Handler, url: SplitResult) -> None:
    """?seq=N (or the newest): a ZIP of the plain frame, the overlay (JPEG) and the record (JSON)."""
    seq = query_int(url, "seq")
    item = app.hub.get(seq) if seq is not None else app.hub.newest
    if item is None or item.result is None:
        h.fail(HTTPStatus.NOT_FOUND, "that frame is gone; take the snapshot of a newer one")
        return
    body = app.images.run(lambda: _snapshot_zip(item, app.config.jpeg_quality), app.config.client_timeout_s)
    name = f"edge-frame-{item.record.get('frame', item.seq)}.zip"
    h.send_body("application/zip", body, headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _snapshot_zip(item: Published, quality: int) -> bytes:
    """The ZIP of one frame (on the image worker: it encodes two JPEGs)."""
    assert item.result is not None
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("frame.jpg", encode_rgb(item.result.frame.image, quality) or b"")
        archive.writestr("overlay.jpg", encode_rgb(item.result.overlay, quality) or b"")
        archive.writestr("record.json", json.dumps(item.record, indent=1))
    return buffer.getvalue()
