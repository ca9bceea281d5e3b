"""The pacing in the real loop (the demo bundle, real TFLite): a motion trigger explains only the changes, skipped
frames reach the live views only, a hot CPU slows explaining; /metrics is scraped over HTTP with the page's token
rules and parsed with the official parser."""

from __future__ import annotations

import dataclasses
import logging
import socket
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import REPO
from http_client import ask
from prometheus_client.parser import text_string_to_metric_families
from test_disklog import make_result
from test_thermal import _sysfs

from edge.explain.cam.smoothing import Smoothing
from edge.explain.explainer import Explainer
from edge.http.sink import DashboardConfig, DashboardSink
from edge.records import Frame, Result
from edge.service.loop import Explaining, Loop, LoopConfig
from edge.service.metrics import ServiceMetrics
from edge.service.pacing import Pacing
from edge.service.systemd_notify import Notifier
from edge.service.thermal import HeatGovernor, ThermalReader
from edge.service.trigger import TriggerConfig
from edge.sources.base import SourceBase

H, W = 120, 160
TOKEN = "s3cret-s3cret-s3cret-24ch"


class Scene(SourceBase):
    """A file-like source (never drops) of a still scene; a box is in view for frames 10 to 24."""

    live = False
    name = "scene"

    def __init__(self, frames: int = 40, delay_s: float = 0.0) -> None:
        self.frames, self.index, self.delay_s = frames, 0, delay_s

    def read(self) -> Frame | None:
        if self.index >= self.frames:
            return None
        time.sleep(self.delay_s)
        image = np.full((H, W, 3), 90, np.uint8)  # (H, W, 3) uint8 RGB
        if 10 <= self.index < 25:
            image[40:80, 50:100] = (240, 200, 40)
        self.index += 1
        return Frame(image=image, index=self.index - 1, timestamp=1000.0 + self.index)


class Collect:
    """A sink keeping (frame index, explained, overlay) of what it is handed."""

    name = "collect"

    def __init__(self, live_view: bool) -> None:
        self.live_view = live_view
        self.seen: list[tuple[int, bool, np.ndarray[Any, np.dtype[np.uint8]]]] = []

    def open(self) -> None:
        pass

    def handle(self, result: Result) -> None:
        self.seen.append((result.frame.index, result.explained, result.overlay))

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def explainer() -> Explainer:
    return Explainer.load(REPO / "models" / "fruit", num_threads=1)


def _run(explainer: Explainer, pacing: Pacing, frames: int = 40) -> tuple[Loop, Collect, Collect]:
    logged, shown = Collect(live_view=False), Collect(live_view=True)
    loop = Loop(explainer, Scene(frames), [logged, shown], config=LoopConfig(),
                explaining=Explaining(pacing=pacing), stop=threading.Event())
    loop.run()
    return loop, logged, shown


def test_motion_explains_the_changes_and_the_live_view_gets_every_frame(explainer: Explainer) -> None:
    metrics = ServiceMetrics(class_names=explainer.class_names, info_labels={})
    loop, logged, shown = _run(explainer, Pacing(TriggerConfig(mode="motion", keepalive_s=0), metrics=metrics))
    assert [i for i, _, _ in logged.seen] == [0, 10, 25]  # the first frame, the box coming, the box going
    assert [i for i, _, _ in shown.seen] == list(range(40))
    assert [i for i, explained, _ in shown.seen if explained] == [0, 10, 25]
    assert loop.stats.frames == 3 and loop.stats.skipped == 37
    # A skipped frame shows the last explanation's heatmap on the live frame, with the age in the bottom-left corner.
    overlays = {i: overlay for i, _, overlay in shown.seen}
    assert np.array_equal(overlays[12][:H // 2, W // 2:], overlays[10][:H // 2, W // 2:])  # same map, same frame
    assert not np.array_equal(overlays[12][H - 12:, :40], overlays[10][H - 12:, :40])  # the age label
    families = {f.name: f for f in text_string_to_metric_families(metrics.text())}
    frames = {s.labels["state"]: s.value for s in families["edge_explainer_frames"].samples}
    assert frames["captured"] == 40 and frames["explained"] == 3 and frames["skipped"] == 37


def test_a_still_scene_still_feeds_the_systemd_watchdog(explainer: Explainer, tmp_path: Path) -> None:
    messages: list[str] = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as systemd:
        systemd.bind(str(tmp_path / "notify"))
        systemd.settimeout(0.2)

        def listen() -> None:  # drained as systemd does: a full datagram queue would block the sender
            while True:
                try:
                    messages.append(systemd.recv(1024).decode())
                except TimeoutError:
                    return

        listener = threading.Thread(target=listen)
        listener.start()
        notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "20000"})  # ping every 10 ms
        loop = Loop(explainer, Scene(10, delay_s=0.03), [], config=LoopConfig(),
                    explaining=Explaining(pacing=Pacing(TriggerConfig(mode="motion", keepalive_s=0))),
                    stop=threading.Event(), notifier=notifier)
        loop.run()
        notifier.close()
        listener.join()
    assert loop.stats.frames == 1 and loop.stats.skipped == 9  # nothing moves: only the first frame is explained
    assert messages.count("WATCHDOG=1") >= 8  # yet the watchdog hears from the loop on every frame


def test_a_hot_cpu_explains_less_and_says_so_once(explainer: Explainer, tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    _sysfs(tmp_path, "85000")
    pacing = Pacing(governor=HeatGovernor(80.0, hot_every_s=3600.0),
                    thermal=ThermalReader(tmp_path, vcgencmd="", every_s=0))
    with caplog.at_level(logging.INFO, logger="edge.service.thermal"):
        loop, logged, _ = _run(explainer, pacing, frames=20)
    assert [i for i, _, _ in logged.seen] == [0]  # always mode, but one frame an hour while hot
    assert loop.stats.skipped == 19
    assert len(caplog.records) == 1 and "above [loop] max_temp_c 80.0" in caplog.records[0].getMessage()
    assert pacing.stats(0.0)["cpu_temp_c"] == 85.0 and pacing.stats(0.0)["explain_min_gap_s"] == 3600.0


def test_metrics_over_http_with_the_pages_token_rules() -> None:
    metrics = ServiceMetrics(class_names=["Apfel"], info_labels={"sha256": "ab12", "runtime": "ai_edge_litert"})
    metrics.count("captured", 3)
    sink = DashboardSink(DashboardConfig(enabled=True, port=0, token=TOKEN), about={"classes": ["Apfel"]},
                         metrics=metrics.text, service=lambda: {"trigger": "motion", "frames_skipped": 2})
    sink.open()
    try:
        answer = ask(sink.port, "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        refused = ask(sink.port, "/metrics")
        wrong = ask(sink.port, "/metrics", headers={"Authorization": "Bearer nope"})
        health = ask(sink.port, "/api/health", headers={"Authorization": f"Bearer {TOKEN}"})
    finally:
        sink.close()
    assert answer.status == 200 and answer.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    families = {f.name: f for f in text_string_to_metric_families(answer.body.decode())}
    captured = [s.value for s in families["edge_explainer_frames"].samples if s.labels["state"] == "captured"]
    assert captured == [3]
    assert families["edge_explainer_model_info"].samples[0].labels == {"sha256": "ab12", "runtime": "ai_edge_litert"}
    assert refused.status == 401 and wrong.status == 401
    assert b'"trigger": "motion"' in health.body and b'"frames_skipped": 2' in health.body


def test_the_dashboard_streams_unexplained_frames_but_keeps_no_event_or_heatmap_of_them() -> None:
    sink = DashboardSink(DashboardConfig(enabled=True, port=0), about={"classes": ["Apfel", "Orange", "Tomate"]})
    explained = make_result(0, class_index=1)
    sink.handle(explained)
    for i in range(1, 4):  # the same explanation under later frames, as the loop hands them to live views
        sink.handle(dataclasses.replace(explained, frame=dataclasses.replace(explained.frame, index=i),
                                        explained=False))
    newest = sink.hub.newest
    assert newest is not None and newest.record["frame"] == 3  # the live frame is what viewers get
    assert len(sink.board.events.listing()) == 1
    assert sink.board.heatmaps.listing() == [0, 1, 0]


def test_the_loop_applies_the_configured_smoothing() -> None:
    """[model] aug_smooth and eigen_smooth reach every explained frame: 5 more trunk passes each, the smoothed map."""
    explainer = Explainer.load(REPO / "models" / "fruit", num_threads=1)  # its own: the trunk-pass counter is read
    explanations: list[Any] = []
    sink = Collect(live_view=False)
    sink.handle = lambda result: explanations.append(result.explanation)  # type: ignore[method-assign]
    loop = Loop(explainer, Scene(3), [sink], config=LoopConfig(),
                explaining=Explaining(smoothing=Smoothing(aug=True, eigen=True)), stop=threading.Event())
    loop.run()
    assert len(explanations) == 3 and explainer._trunk is not None and explainer._trunk.passes == 3 * 5
    image = np.full((H, W, 3), 90, np.uint8)
    expected = explainer.explain(image, aug_smooth=True, eigen_smooth=True).cam_raw
    np.testing.assert_array_equal(explanations[0].cam_raw, expected)
    assert not np.array_equal(explainer.explain(image, aug_smooth=True).cam_raw, expected)
