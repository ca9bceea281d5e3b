"""[drift] on the browser view: per class the baseline's mean map beside the monitor's running one."""

from __future__ import annotations

import json
from http import HTTPStatus
from urllib.parse import SplitResult, parse_qs

import numpy as np

from edge.explain.drift_monitor import DriftMaps
from edge.http.board import heatmap_png
from edge.http.dispatch import App
from edge.http.handler import Handler
from edge.http.routes import query_int

NOT_YET = "no drift monitor ([drift] enabled), or its baseline is still being learned"


def _maps(app: App, h: Handler) -> DriftMaps | None:
    maps = app.board.drift() if app.board.drift is not None else None
    if maps is None:
        h.fail(HTTPStatus.NOT_FOUND, NOT_YET)
    return maps


def drift_list(app: App, h: Handler, url: SplitResult) -> None:
    """Per class: its index, name, frames in the baseline and since start, and its map distance over the threshold."""
    if (maps := _maps(app, h)) is None:
        return
    listing = [{"class": k, "name": name, "baseline_frames": maps.baseline_frames[k], "frames": maps.frames[k],
                "distance": round(maps.distances[k], 3)} for k, name in enumerate(maps.class_names)]
    h.send_body("application/json", json.dumps(listing).encode())


def drift_map(app: App, h: Handler, url: SplitResult) -> None:
    """?class=I&map=baseline|current: that mean map, drawn as the per-class mean heatmaps are (each to its own peak:
    where the model looks, as the drift distances judge it)."""
    index, which = query_int(url, "class"), parse_qs(url.query).get("map", [""])[0]
    if which not in ("baseline", "current"):
        h.fail(HTTPStatus.BAD_REQUEST, "map must be baseline or current")
        return
    if (maps := _maps(app, h)) is None:
        return
    if index is None or not 0 <= index < len(maps.class_names):
        h.fail(HTTPStatus.NOT_FOUND, "no such class")
        return
    m = (maps.baseline if which == "baseline" else maps.current)[index]  # (h, w) float64, sums to 1
    peak = float(m.max())
    scaled = (m / peak if peak > 0 else m).astype(np.float32)  # (h, w) float32 in [0, 1]
    image = app.images.run(lambda: heatmap_png(scaled), app.config.client_timeout_s)
    if image is None:
        h.fail(HTTPStatus.INTERNAL_SERVER_ERROR, "cannot encode the map")
        return
    h.send_body("image/png", image)
