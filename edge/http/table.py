"""Every path the browser view serves, in one table: the page and its files, frames and records (edge.http.routes),
the dashboard's state, controls, events, heatmaps and snapshot (edge.http.dashboard). Nothing else is reachable."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from edge.http import dashboard, drift_view, prometheus, routes
from edge.http.dispatch import Route

ROUTES: Mapping[str, Route] = MappingProxyType({
    "/": Route(routes.page, page=True),
    "/app.js": Route(routes.script),
    "/style.css": Route(routes.style),
    "/frame.jpg": Route(routes.frame),
    "/prediction.json": Route(routes.prediction),
    "/stream.mjpg": Route(routes.stream),
    "/events": Route(dashboard.events),
    "/api/state": Route(dashboard.state),
    "/api/controls": Route(dashboard.controls, methods=("POST",)),
    "/api/health": Route(dashboard.health_route),
    "/api/events": Route(dashboard.event_list),
    "/event.jpg": Route(dashboard.event_image),
    "/heatmap.png": Route(dashboard.heatmap),
    "/api/heatmaps": Route(dashboard.heatmap_list),
    "/drift.png": Route(drift_view.drift_map),
    "/api/drift": Route(drift_view.drift_list),
    "/snapshot.zip": Route(dashboard.snapshot),
    "/metrics": Route(prometheus.metrics),
})
