"""The browser view's application: the fixed route table and the gate every request passes first."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit

from edge.explain.drift_monitor import DriftMaps
from edge.http.board import EventRing, MeanHeatmaps
from edge.http.config import DashboardConfig
from edge.http.gate import Gate
from edge.http.handler import Handler
from edge.http.hub import FrameHub
from edge.http.imaging import ImageWorker, ImageWorkError
from edge.live import LiveSettings

WEB = Path(__file__).resolve().parent.parent / "web"  # the page's files, shipped in edge/web
ASSETS = ("index.html", "app.js", "style.css")


@dataclass
class Board:
    """The dashboard's state beside the frames: live settings (None: no controls), events, heatmaps, figures."""

    live: LiveSettings | None
    events: EventRing
    heatmaps: MeanHeatmaps
    about: dict[str, Any]  # model, sha256, runtime, threads, classes, methods
    controls: bool
    started: float = field(default_factory=time.monotonic)
    service: Callable[[], dict[str, Any]] | None = None  # the service's heat and trigger figures, for health
    metrics: Callable[[], str] | None = None  # the /metrics text
    drift: Callable[[], DriftMaps | None] | None = None  # [drift]: the monitor's baseline and running mean maps


@dataclass(frozen=True)
class Route:
    """One fixed path: its methods and function; page routes may be reached by a link from another site."""

    run: Callable[[App, Handler, SplitResult], None]
    methods: tuple[str, ...] = ("GET", "HEAD")
    page: bool = False


class App:
    """What the handlers serve: config, gate, frames, board, and the route table (edge.http.table.ROUTES)."""

    def __init__(self, config: DashboardConfig, gate: Gate, hub: FrameHub, board: Board,
                 routes: Mapping[str, Route]) -> None:
        self.routes = routes
        self.config = config
        self.gate = gate
        self.hub = hub
        self.board = board
        self.images = ImageWorker()  # OpenCV work off the short-lived connection threads
        self.assets = {name: (WEB / name).read_bytes() for name in ASSETS}

    def dispatch(self, h: Handler) -> None:
        url = urlsplit(h.path)
        h.head_only = h.command == "HEAD"
        if not self.gate.host_allowed(h.headers.get("Host")):
            h.fail(HTTPStatus.FORBIDDEN, "unknown Host: add it to [http] allowed_hosts")
            return
        route = self.routes.get(url.path)
        if route is None:
            h.fail(HTTPStatus.NOT_FOUND, "not found")
            return
        if h.command not in route.methods:
            h.fail(HTTPStatus.METHOD_NOT_ALLOWED, "method not allowed", {"Allow": ", ".join(route.methods)})
            return
        if self.gate.cross_origin(h.headers, navigation_ok=route.page):
            h.fail(HTTPStatus.FORBIDDEN, "cross-origin request refused")
            return
        authorised, by_token = self.gate.check_token(h.headers, url.query)
        if not authorised:
            h.fail(HTTPStatus.UNAUTHORIZED, "token required: open the page as /?token=... once",
                   {"WWW-Authenticate": "Bearer"})
            return
        if by_token and route.page and "token=" in url.query:
            # Swap the token in the address bar for the session cookie, so it stays out of history and Referer.
            h.fail(HTTPStatus.SEE_OTHER, "see /", {"Location": url.path, "Set-Cookie": self.gate.set_cookie()})
            return
        try:
            route.run(self, h, url)
        except ImageWorkError:
            h.fail(HTTPStatus.SERVICE_UNAVAILABLE, "busy: try again", {"Retry-After": "1"})
