"""The picamera2 source where picamera2 fails: no camera, a busy one, hung captures, previews that cannot show, overlays
the display refuses, bad configurations; on tests/fakes/picamera2, which fails where the real module does."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from picamera2_fixture import connect_display, fake_picamera2

from edge.explain.explainer import Explainer
from edge.explain.render import RenderConfig
from edge.service.loop import Explaining, Loop, LoopConfig
from edge.sinks import Picamera2OverlaySink
from edge.sources import Picamera2Source, SourceConfig, SourceError, picamera2_preview
from edge.sources.base import SourceUnavailableError
from edge.sources.picamera2_preview import choose_preview

FAST = SourceConfig(width=320, height=240, capture_timeout_s=0.2)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[ModuleType]:
    yield from fake_picamera2(monkeypatch, tmp_path)


# --- the fake itself is as strict as picamera2 ------------------------------------------------------------------

def test_fake_refuses_what_picamera2_refuses(fake: ModuleType) -> None:
    with pytest.raises(TypeError):
        fake.Picamera2(0, buffer_count=3)  # no **kwargs in the real constructor
    camera = fake.Picamera2(0)
    with pytest.raises(RuntimeError, match="did not complete"):
        fake.Picamera2(0)  # busy: acquired by the first
    with pytest.raises(ValueError, match="Bad key 'fps'"):
        camera.create_preview_configuration(main={"size": (320, 240), "fps": 30})
    with pytest.raises(RuntimeError, match="Bad format YUV422 in stream lores"):
        camera.configure(camera.create_preview_configuration(lores={"format": "YUV422", "size": (100, 100)}))
    config = camera.create_preview_configuration()
    config["main"]["size"] = [320, 240]  # create_preview_configuration's alignment would have made it a tuple
    with pytest.raises(RuntimeError, match=r"should be \(width, height\)"):
        camera.configure(config)
    with pytest.raises(RuntimeError, match="No preview specified"):
        camera.stop_preview()
    camera.start_preview(fake.Preview.NULL)
    with pytest.raises(RuntimeError, match="An event loop is already running"):
        camera.start_preview(fake.Preview.NULL)
    with pytest.raises(IndexError):
        fake.Picamera2(1)  # one camera attached
    camera.close()
    camera = fake.Picamera2(0)  # released: free again
    with pytest.raises(TypeError):
        camera.start_preview(fake.Preview.DRM, colour="red")  # kwargs go to the preview class, which has no such one
    camera.close()


def test_no_camera_is_unavailable_not_a_config_error(fake: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fake, "CAMERAS", 0)
    with pytest.raises(SourceUnavailableError, match="no camera 0 found"):
        Picamera2Source(FAST).open()


def test_busy_camera_is_unavailable(fake: ModuleType) -> None:
    holder = fake.Picamera2(0)  # another program has it
    with pytest.raises(SourceUnavailableError, match=r"busy or not ready.*Device or resource busy"):
        Picamera2Source(FAST).open()
    holder.close()
    with Picamera2Source(FAST) as source:
        assert source.read() is not None


def test_close_that_cannot_stop_the_preview_is_one_warning(fake: ModuleType, monkeypatch: pytest.MonkeyPatch,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    source = Picamera2Source(FAST)
    source.open()
    monkeypatch.setattr(fake, "STOP_PREVIEW_FAILS", True)
    with caplog.at_level(logging.WARNING):
        source.close()  # picamera2 raises "Unable to stop preview." and keeps the camera
    assert [r.getMessage() for r in caplog.records] == ["picamera2: close failed: Unable to stop preview."]
    with pytest.raises(SourceUnavailableError):  # still held: a reopen waits, it does not crash
        source.open()


# --- captures that never complete ---------------------------------------------------------------------------------

def _read_in_thread(source: Picamera2Source, bound_s: float) -> BaseException | object:
    """source.read() on a daemon thread; what it returned or raised, or the thread itself if it is still blocked."""
    outcome: list[BaseException | object] = []

    def read() -> None:
        try:
            outcome.append(source.read())
        except BaseException as e:
            outcome.append(e)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    thread.join(bound_s)
    return outcome[0] if outcome else thread


def test_hung_capture_times_out_and_is_flushed(fake: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    source = Picamera2Source(FAST)
    source.open()
    camera = fake.INSTANCES[0]
    monkeypatch.setattr(fake, "HANG", True)  # the cable came out
    outcome = _read_in_thread(source, bound_s=5.0)
    assert isinstance(outcome, SourceUnavailableError), f"read still blocked or returned {outcome!r}"
    assert "no frame within 0.2 s" in str(outcome)
    assert camera.pending_jobs == 0  # cancel_all_and_flush() emptied picamera2's job queue before any reopen
    source.close()


def test_loop_rides_out_a_hung_camera(fake: ModuleType, fruit_bundle: Path, monkeypatch: pytest.MonkeyPatch,
                                      caplog: pytest.LogCaptureFixture) -> None:
    source = Picamera2Source(FAST, model_size=(100, 100))
    source.open()
    monkeypatch.setattr(fake, "HANG", True)
    threading.Timer(0.7, lambda: monkeypatch.setattr(fake, "HANG", False)).start()  # the camera comes back
    with caplog.at_level(logging.INFO):
        stats = Loop(Explainer.load(fruit_bundle), source, [], config=LoopConfig(max_frames=3, reopen_backoff_s=0.05),
                     explaining=Explaining(), stop=threading.Event()).run()
    source.close()
    assert stats.frames == 3 and stats.read_errors >= 2 and not stats.failure
    first = fake.INSTANCES[0]
    assert first.closed and first.pending_jobs == 0 and len(fake.INSTANCES) >= 2  # flushed, closed, reopened
    lines = [r.getMessage() for r in caplog.records if r.name == "edge.service.loop"]
    assert len([m for m in lines if "no frame within" in m]) == 1  # one line when lost...
    assert len([m for m in lines if "frames again after" in m]) == 1  # ...one when back, none per retry


# --- previews -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("requested", "display", "connected", "expected"), [
    ("auto", ":0", False, "qtgl"),  # a desktop
    ("auto", "localhost:10.0", False, "qt"),  # ssh -X: no OpenGL over the network, as picamera2 decides
    ("auto", "", True, "drm"),  # the console with a monitor
    ("auto", "", False, None),  # headless over SSH: no preview
    ("drm", "", False, None),  # DRM without a monitor would kill the camera's frames
    ("qtgl", "", True, None),  # Qt needs a DISPLAY
    ("qt", "localhost:10.0", False, "qt"),
])
def test_preview_choice(tmp_path: Path, requested: str, display: str, connected: bool, expected: str | None) -> None:
    (tmp_path / "card1-HDMI-A-1").mkdir()
    (tmp_path / "card1-HDMI-A-1" / "status").write_text("connected\n" if connected else "disconnected\n")
    kind, why = choose_preview(requested, {"DISPLAY": display} if display else {}, tmp_path)
    assert kind == expected, why


def test_headless_drm_gives_frames_without_a_preview(fake: ModuleType) -> None:
    with Picamera2Source(FAST, preview="drm") as source:
        assert source.active_preview is None and not source.wants_overlay
        assert source.read() is not None
    assert fake.INSTANCES[0].preview is None


def test_a_preview_that_kills_frames_is_dropped_not_the_camera(fake: ModuleType, fruit_bundle: Path,
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    """edge sees a connected display, but DRM cannot drive it (another program holds it): picamera2's preview thread
    dies at the first frame. The capture times out, and the camera is reopened without a preview."""
    edge_view = fake.DRM_ROOT.parent / "edge-view"  # the fake's own view (kms++'s) stays without a display
    edge_view.mkdir()
    connect_display(edge_view)
    monkeypatch.setattr(picamera2_preview, "DRM_ROOT", edge_view)
    source = Picamera2Source(FAST, model_size=(100, 100), preview="auto")
    source.open()
    assert source.active_preview == "drm"
    with caplog.at_level(logging.WARNING):
        stats = Loop(Explainer.load(fruit_bundle), source, [], config=LoopConfig(max_frames=3, reopen_backoff_s=0.05),
                     explaining=Explaining(), stop=threading.Event()).run()
    source.close()
    assert stats.frames == 3 and not stats.failure
    assert source.preview_failed and [c.preview for c in fake.INSTANCES[1:]] == [None] * (len(fake.INSTANCES) - 1)
    assert sum("no frame ever came through the drm preview" in r.getMessage() for r in caplog.records) == 1


def test_a_preview_that_fails_to_start_is_no_preview(fake: ModuleType, monkeypatch: pytest.MonkeyPatch,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    connect_display(fake.DRM_ROOT)

    real_init = fake._Preview.__init__

    def no_card(self: object, kind: object, **kwargs: object) -> None:  # DrmManager.add: pykms.Card() fails
        if kind is fake.Preview.DRM:
            raise RuntimeError("kms++: failed to open card")
        real_init(self, kind, **kwargs)

    monkeypatch.setattr(fake._Preview, "__init__", no_card)
    with caplog.at_level(logging.WARNING), Picamera2Source(FAST, preview="auto") as source:
        assert source.active_preview is None and source.read() is not None
    assert "the drm preview failed to start (kms++: failed to open card)" in caplog.text


# --- overlays -----------------------------------------------------------------------------------------------------

def test_overlay_refused_by_the_display_turns_the_sink_off_once(fake: ModuleType, fruit_bundle: Path,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    connect_display(fake.DRM_ROOT)
    monkeypatch.setattr(fake, "DRM_OVERLAY_PLANE", False)  # Pi 5 composite: no plane to spare
    render = RenderConfig(threshold=0.0)
    with Picamera2Source(FAST, model_size=(100, 100), preview="auto") as source:
        sink = Picamera2OverlaySink(source, render, max_rate_hz=0)
        with caplog.at_level(logging.WARNING):
            stats = Loop(Explainer.load(fruit_bundle), source, [sink], config=LoopConfig(max_frames=5),
                         explaining=Explaining(render=render), stop=threading.Event()).run()
        sink.close()
    assert stats.frames == 5 and not stats.failure and sink.disabled and sink.sent == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "Overlays not supported on this device" in warnings[0]


class _Target:
    """An overlay target that records what it was sent."""

    wants_overlay = True

    def __init__(self) -> None:
        self.sent: list[np.ndarray | None] = []

    def set_overlay(self, overlay: np.ndarray | None) -> None:
        self.sent.append(overlay)


def _result(fruit_bundle: Path, value: float) -> object:
    from edge.records import Frame, Result

    explainer = Explainer.load(fruit_bundle)
    image = np.full((48, 64, 3), 90, np.uint8)
    ex = explainer.explain(image)
    cam = np.full((8, 8), value, np.float32)
    return Result(frame=Frame(image=image, index=0, timestamp=time.time()), explanation=ex, cam=cam, top=[],
                  source="test", fps=0.0)


def test_overlay_sent_only_when_changed(fruit_bundle: Path) -> None:
    target = _Target()
    sink = Picamera2OverlaySink(target, RenderConfig(threshold=0.0), max_rate_hz=0)
    same, other = _result(fruit_bundle, 0.5), _result(fruit_bundle, 0.9)
    for result in (same, same, same, other, other):
        sink.handle(result)  # type: ignore[arg-type]
    assert len(target.sent) == 2 and sink.skipped == 3


def test_overlay_rate_is_capped(fruit_bundle: Path) -> None:
    target = _Target()
    sink = Picamera2OverlaySink(target, RenderConfig(threshold=0.0), max_rate_hz=0.001)  # one per 1000 s
    for value in (0.1, 0.5, 0.9):
        sink.handle(_result(fruit_bundle, value))  # type: ignore[arg-type]
    assert len(target.sent) == 1 and sink.skipped == 2


def test_no_preview_no_overlay_work(fake: ModuleType, fruit_bundle: Path) -> None:
    with Picamera2Source(FAST, preview="auto") as source:  # headless: no preview
        sink = Picamera2OverlaySink(source, RenderConfig(), max_rate_hz=0)
        sink.handle(_result(fruit_bundle, 0.5))  # type: ignore[arg-type]
    assert sink.sent == 0 and fake.INSTANCES[0].overlays == []


def test_bad_source_config_is_not_waited_for(fake: ModuleType) -> None:
    with pytest.raises(SourceError) as info:
        Picamera2Source(SourceConfig(width=320, height=240, lores_format="RGB888"), model_size=(64, 64)).open()
    assert not isinstance(info.value, SourceUnavailableError)


def test_overlay_racing_a_reopen_is_no_error(fake: ModuleType) -> None:
    """The loop's thread sends an overlay while the capture thread closes the camera for a reopen."""
    connect_display(fake.DRM_ROOT)
    with Picamera2Source(FAST, preview="auto") as source:
        assert source.read() is not None
        camera = source.camera
        real_set_overlay = camera.set_overlay

        def racing(overlay: np.ndarray | None) -> None:
            source.close()  # the capture thread, meanwhile
            real_set_overlay(overlay)  # picamera2: "No preview specified."

        camera.set_overlay = racing
        source.set_overlay(np.zeros((4, 4, 4), np.uint8))
