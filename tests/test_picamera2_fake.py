"""The picamera2 source and overlay sink against tests/fakes/picamera2, which mimics the real module's calls."""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from conftest import REPO, run_python
from picamera2_fixture import FAKES, connect_display, fake_picamera2

from edge.explain.explainer import Explainer
from edge.explain.render import RenderConfig
from edge.service.loop import Explaining, Loop, LoopConfig
from edge.sinks import Picamera2OverlaySink, read_jsonl
from edge.sources import Picamera2Source, SourceConfig, SourceError
from edge.sources.base import SourceUnavailableError
from edge.sources.picamera2 import packed_to_rgb, yuv420_to_rgb


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[ModuleType]:
    yield from fake_picamera2(monkeypatch, tmp_path)


def test_missing_picamera2_is_one_actionable_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "picamera2", None)  # import fails as on a machine without it
    with pytest.raises(SourceError, match=r"apt install python3-picamera2.*--system-site-packages"):
        Picamera2Source().open()


def _reference_rgb(y: np.ndarray, cb: np.ndarray, cr: np.ndarray) -> np.ndarray:
    """Full-range Rec.601 (JPEG) YCbCr -> RGB in float64, the matrix of picamera2's converters.YUV2RGB_JPEG."""
    y, cb, cr = (a.astype(np.float64) for a in (y, cb, cr))
    rgb = np.dstack([y + 1.402 * (cr - 128), y - 0.344136 * (cb - 128) - 0.714136 * (cr - 128),
                     y + 1.772 * (cb - 128)])
    return np.clip(np.rint(rgb), 0, 255)


@pytest.mark.parametrize("fmt", ["YUV420", "YVU420"])
def test_yuv_decode_matches_a_full_range_reference(fmt: str) -> None:
    rng = np.random.default_rng(7)
    h, w, stride = 24, 38, 64
    y = rng.integers(0, 256, (h, w), np.uint8)
    cb, cr = rng.integers(0, 256, (2, h // 2, w // 2), np.uint8)
    planes = np.full((h * 3 // 2, stride), 0x55, np.uint8)  # padding bytes that must not leak in
    planes[:h, :w] = y
    chroma = planes[h:].reshape(2, h // 2, stride // 2)
    first, second = (cb, cr) if fmt == "YUV420" else (cr, cb)
    chroma[0][:, : w // 2], chroma[1][:, : w // 2] = first, second
    expected = _reference_rgb(y, cb.repeat(2, 0).repeat(2, 1), cr.repeat(2, 0).repeat(2, 1))
    rgb = yuv420_to_rgb(planes, w, fmt)
    assert rgb.shape == (h, w, 3) and rgb.dtype == np.uint8
    assert np.abs(rgb.astype(int) - expected).max() <= 1


@pytest.mark.parametrize("fmt", ["YUV420", "YVU420"])
def test_a_full_range_gradient_comes_back_within_2_levels(fake: ModuleType, fmt: str) -> None:
    from picamera2 import _pixels  # the camera side: what the ISP writes for Sycc()

    ramp = np.arange(256, dtype=np.uint8)
    gradient = np.zeros((256, 256, 3), np.uint8)  # one level per pixel: chroma subsampling costs at most a level
    gradient[:, :, 0] = ramp  # red 0..255 across
    gradient[:, :, 1] = ramp[:, None]  # green 0..255 down
    gradient[:, :, 2] = ramp[::-1]
    gradient[:8] = ramp[None, :, None]  # and a gray ramp: black and white must survive unclipped
    planes = _pixels.yuv420(gradient, 256, fmt, full_range=True)
    error = np.abs(yuv420_to_rgb(planes, 256, fmt).astype(int) - gradient)
    assert error.max() <= 2, error.max()


def test_main_and_yuv420_lores_become_rgb(fake: ModuleType) -> None:
    source = Picamera2Source(SourceConfig(width=640, height=480), model_size=(100, 100))
    with source:
        camera = fake.INSTANCES[0]
        lores = camera.stream_configuration("lores")
        assert lores["format"] == "YUV420" and lores["size"] == (100, 100) and lores["stride"] > 100  # padded rows
        assert camera.camera_config["colour_space"].full_range  # picamera2's default Sycc()
        frames = [source.read() for _ in range(3)]
    assert camera.closed
    for i, frame in enumerate(frames):
        assert frame is not None and frame.index == i
        assert np.array_equal(frame.image, fake.scene(480, 640, i))  # XBGR8888 main: exact
        assert frame.lores is not None and frame.lores.shape == (100, 100, 3)
        expected = fake.scene(100, 100, i).astype(int)
        # YUV420 halves the chroma resolution: colour edges blur; inside the flat areas the colours are exact
        error = np.abs(frame.lores.astype(int) - expected)
        assert np.median(error) <= 1 and error[5:95:10, 10:40].max() <= 2
        assert frame.model_image is frame.lores


@pytest.mark.parametrize(("main_format", "lores_format"), [("RGB888", "RGB888"), ("XRGB8888", "BGR888"),
                                                           ("BGR888", "YUV420")])
def test_packed_formats_on_pi5(fake: ModuleType, monkeypatch: pytest.MonkeyPatch, main_format: str,
                               lores_format: str) -> None:
    monkeypatch.setattr(fake, "PLATFORM", "PISP")  # Pi 5: lores may be RGB
    config = SourceConfig(width=320, height=240, main_format=main_format, lores_format=lores_format)
    with Picamera2Source(config, model_size=(64, 48)) as source:
        frame = source.read()
    assert frame is not None and np.array_equal(frame.image, fake.scene(240, 320, 0))
    assert frame.lores is not None and frame.lores.shape == (48, 64, 3)
    if lores_format != "YUV420":
        assert np.array_equal(frame.lores, fake.scene(48, 64, 0))


def test_vc4_rejects_rgb_lores_with_the_reason(fake: ModuleType) -> None:
    with pytest.raises(SourceError, match="lores stream must be YUV") as info:
        Picamera2Source(SourceConfig(lores_format="RGB888"), model_size=(100, 100)).open()
    assert not isinstance(info.value, SourceUnavailableError)  # a configuration error: exit 2, not a wait
    assert fake.INSTANCES[0].closed  # the camera is released even when configure fails


def test_conversions_crop_padding() -> None:
    padded = np.full((6, 4), 0x55, np.uint8)  # (h * 3 / 2, stride) for h = 4, width 2, stride 4
    padded[:4, :2] = 128  # Y
    padded[4:, :] = 128  # U, V: neutral
    rgb = yuv420_to_rgb(padded, 2)
    assert rgb.shape == (4, 2, 3) and np.abs(rgb.astype(int) - 128).max() <= 1
    bgrx = np.dstack([np.full((2, 2), c, np.uint8) for c in (10, 20, 30, 255)])
    assert tuple(packed_to_rgb(bgrx, "XRGB8888")[0, 0]) == (30, 20, 10)


def test_loop_hands_overlays_to_the_drm_preview(fake: ModuleType, fruit_bundle: Path) -> None:
    connect_display(fake.DRM_ROOT)
    explainer = Explainer.load(fruit_bundle)
    source = Picamera2Source(SourceConfig(width=320, height=240), model_size=(100, 100), preview="auto")
    render = RenderConfig(threshold=0.0, alpha=0.5)
    with source:
        camera = fake.INSTANCES[0]
        assert camera.preview is fake.Preview.DRM and source.active_preview == "drm"
        sink = Picamera2OverlaySink(source, render, size=(120, 160), max_rate_hz=0)  # no rate cap: every change
        stats = Loop(explainer, source, [sink], config=LoopConfig(max_frames=4), explaining=Explaining(render=render),
                     stop=threading.Event()).run()
        sink.close()
    assert stats.frames == 4 and not stats.failure
    overlays = camera.overlays
    assert 1 <= sink.sent == len(overlays) - 1 <= 4 and overlays[-1] is None  # sent when changed, cleared at close
    for overlay in overlays[:-1]:
        assert overlay.shape == (120, 160, 4) and overlay.dtype == np.uint8
        assert (overlay[:, :, 3] == 128).mean() > 0.5  # threshold 0: heatmap everywhere at alpha 0.5
        assert overlay[:30, :100, 3].max() == 255 and (overlay[:5, :20, 3] == 200).all()  # label on its box


def test_cli_runs_the_picamera2_path_headless(fruit_bundle: Path, tmp_path: Path) -> None:
    """No DISPLAY and (on this machine) no /sys/class/drm: no preview, no overlays, frames all the same."""
    journal = tmp_path / "journal.jsonl"
    env = {"PYTHONPATH": f"{FAKES}{os.pathsep}{REPO}", "FAKE_PICAMERA2_JOURNAL": str(journal), "DISPLAY": ""}
    proc = run_python("-m", "edge", "run", "--model", str(fruit_bundle), "--source", "picamera2", "--size", "320x240",
                      "--max-frames", "5", "--log-dir", str(tmp_path / "log"), "--log-every-frame", env=env,
                      timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "picamera2: no preview: no DISPLAY and no display connected" in proc.stderr
    events = [json.loads(line) for line in journal.read_text().splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[:4] == ["open", "configure", "start_preview", "start"] and kinds[-1] == "close"
    assert events[2]["preview"] == "NULL"  # start() runs picamera2's NullPreview: no DRM on a headless Pi
    configure = events[1]
    assert configure["main"] == ["XBGR8888", [320, 240]] and configure["lores"][:2] == ["YUV420", [100, 100]]
    assert "set_overlay" not in kinds and "preview_thread_died" not in kinds
    records = read_jsonl(tmp_path / "log" / "predictions.jsonl")
    frames = [r["frame"] for r in records]  # a live source: a frame may be dropped while the loop is busy
    assert len(frames) == 5 and frames == sorted(set(frames)) and all(r["size"] == [320, 240] for r in records)
    assert all(r["source"] == "picamera2" for r in records)
