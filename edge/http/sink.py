"""The browser view: a page with the live overlay and its record, an MJPEG stream, a frame, the record as JSON.

Only the fixed routes of edge.http.table are served; nothing maps a request to a file. It listens on 127.0.0.1 unless
configured otherwise, and then requires an access token. Every request passes the limits of edge.http.server and the
gate of edge.http.gate first. Each viewer waits for the newest frame, so a slow one skips frames instead of slowing
the loop, and a stalled one times out.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from edge.http import App, BoundedHTTPServer, DashboardConfig, FrameHub, Gate, default_hosts, is_loopback, resolve_token
from edge.http.board import EventRing, MeanHeatmaps
from edge.http.dispatch import Board
from edge.http.handler import Handler
from edge.http.log_seed import seed_events
from edge.http.table import ROUTES
from edge.jpeg import encode_rgb
from edge.live import LiveSettings
from edge.records import PendingScores, Result, SinkError
from edge.sinks.record import PolicyConfig, make_record

__all__ = ["DashboardConfig", "DashboardSink", "is_loopback", "views_among"]

_LOGGER = logging.getLogger(__name__)

_SCORING_KEPT = 8  # [faithfulness] scores awaited at once (the worker scores one frame at a time)


class DashboardSink:
    """The HTTP server; handle() encodes the overlay once and publishes it to every viewer."""

    name = "http"
    live_view = True  # streams every frame; only explained ones feed the events and mean heatmaps

    def __init__(self, config: DashboardConfig, *, live: LiveSettings | None = None,
                 about: dict[str, Any] | None = None, policy: PolicyConfig | None = None, log_dir: str = "",
                 service: Callable[[], dict[str, Any]] | None = None, metrics: Callable[[], str] | None = None) -> None:
        """service: more health figures (heat, trigger); metrics: the /metrics text (none: 404)."""
        token = resolve_token(config)
        if not is_loopback(config.host) and not token:
            raise SinkError(f"[http] host {config.host!r} is not loopback: set [http] token_file (or token) "
                            "to allow it")
        if config.max_connections <= config.max_clients:
            raise SinkError(f"[http] max_connections ({config.max_connections}) must exceed max_clients "
                            f"({config.max_clients}): every viewer also loads the page")
        self.config = config
        self.hub = FrameHub()
        hosts = default_hosts(config.host) | set(config.allowed_hosts.split(","))
        self.gate = Gate(token, hosts, cookie_name=f"edge-session-{config.port}")
        about = about or {}
        self.board = Board(live=live, events=EventRing(config.events, policy or PolicyConfig(), config.jpeg_quality),
                           heatmaps=MeanHeatmaps(len(about.get("classes", ()))), about=about,
                           controls=config.controls and live is not None, service=service, metrics=metrics)
        self.log_dir = log_dir  # the disk log's folder: recent events are read back from it at open()
        self._server: BoundedHTTPServer | None = None
        self._scoring: list[PendingScores] = []  # [faithfulness] scores of frames already shown, not in yet
        self.latest_scores: dict[str, Any] | None = None  # the newest scores in, in every record as faithfulness_latest
        self._thread: threading.Thread | None = None
        self._app: App | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1] if self._server else self.config.port

    @property
    def url(self) -> str:
        host = f"[{self.config.host}]" if ":" in self.config.host else self.config.host
        return f"http://{host}:{self.port}/"

    def open(self) -> None:
        self._app = app = App(self.config, self.gate, self.hub, self.board, ROUTES)
        handler = type("BoundHandler", (Handler,), {"app": app})
        try:
            self._server = BoundedHTTPServer((self.config.host, self.config.port), handler,
                                             self.config.max_connections)
        except OSError as e:
            raise SinkError(f"[http] cannot listen on {self.config.host}:{self.config.port}: {e.strerror}") from e
        if self.config.port == 0:  # the cookie is per port: two views on one host must not share it
            self.gate.cookie_name = f"edge-session-{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.2,), name="http", daemon=True)
        self._thread.start()
        _LOGGER.info("browser view at %s", self.url)
        logged = seed_events(self.log_dir, self.config.events)
        if logged:
            self.board.events.seed(logged)
            _LOGGER.info("dashboard: %d recent events read back from %s", len(logged), self.log_dir)

    def handle(self, result: Result) -> None:
        """Publish the overlay (or the plain frame, if the overlay is switched off) unless paused; feed the
        events ring and the mean heatmaps either way, with explained frames only."""
        settings = self.board.live.get() if self.board.live else None
        if result.explained:
            self.board.heatmaps.add(result.explanation.class_index, result.cam)
        self._take_scores(result)
        show_overlay = settings is None or settings.overlay
        data = encode_rgb(result.overlay if show_overlay else result.frame.image, self.config.jpeg_quality)
        if data is None:
            return
        record = make_record(result)  # after drawing: its latency_ms then has "render"
        if self.latest_scores is not None:
            record["faithfulness_latest"] = self.latest_scores
        if settings is None or not settings.paused:
            self.hub.publish(data, record, result)
        if result.explained:
            self.board.events.offer(result, record, lambda: data if show_overlay else
                                    encode_rgb(result.overlay, self.config.jpeg_quality) or b"")

    def _take_scores(self, result: Result) -> None:
        """[faithfulness]: a frame's scores arrive frames after it was shown (the view never waits for them): each set
        is shown as the latest once it is in (the running means per class are the scoring worker's)."""
        scoring = result.scoring
        if scoring is not None and result.explained and all(s is not scoring for s in self._scoring):
            self._scoring = [*self._scoring, scoring][-_SCORING_KEPT:]
        for done in [s for s in self._scoring if s.done]:
            self._scoring.remove(done)
            if done.value is not None and "skipped" not in done.value:
                self.latest_scores = done.value

    def close(self) -> None:
        self.hub.close()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._app is not None:
            self._app.images.close()


def views_among(sinks: Iterable[object]) -> list[DashboardSink]:
    """The browser views among the service's outputs, bare or inside a SinkWorker."""
    return [view for sink in sinks if isinstance(view := getattr(sink, "sink", sink), DashboardSink)]
