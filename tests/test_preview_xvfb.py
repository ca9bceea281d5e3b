"""The OpenCV preview window under Xvfb: a screenshot of the X screen shows the overlay."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import REPO

from edge.explain.explainer import Explainer
from edge.explain.render import RenderConfig, render, top_entries
from edge.records import SinkError
from edge.sinks import OpenCVPreviewSink, PreviewConfig
from edge.sinks.preview import opencv_has_gui

pytestmark = pytest.mark.slow

# The device and the test venv use opencv-python-headless, which has no highgui. The same OpenCV version built with
# its Qt backend (the opencv-python wheel) goes in a directory of its own, put first on PYTHONPATH for the run only.
GUI_CV2 = REPO / "build" / "opencv-gui"
GUI_CV2_INSTALL = f"pip install --target {GUI_CV2} --no-deps opencv-python=={cv2.__version__}.*"
RENDER_TOML = """
[render]
show_fps = false
threshold = 0.0
alpha = 0.6
[source]
fps = 10
"""


def gui_pythonpath() -> str:
    """A PYTHONPATH entry with an OpenCV that has a GUI, installed from PyPI into build/ on first use."""
    if opencv_has_gui():
        return ""
    if not (GUI_CV2 / "cv2" / "__init__.py").exists():
        proc = subprocess.run([sys.executable, "-m", *GUI_CV2_INSTALL.split()], capture_output=True, text=True,
                              timeout=900, check=False)
        if proc.returncode != 0:
            pytest.skip(f"no OpenCV with a GUI backend and pip could not install it ({GUI_CV2_INSTALL}): "
                        f"{proc.stderr.strip().splitlines()[-1:]}")
    return str(GUI_CV2)


@pytest.fixture
def xvfb(tmp_path: Path) -> Iterator[str]:
    """A private X server; yields its DISPLAY."""
    for tool, package in (("Xvfb", "xvfb"), ("xwd", "x11-apps")):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed (apt install {package})")
    read, write = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", "800x600x24", "-nolisten", "tcp"],
                            pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    try:
        with os.fdopen(read) as f:
            display = f.readline().strip()
        assert display.isdigit(), "Xvfb did not report a display"
        yield f":{display}"
    finally:
        proc.terminate()
        proc.wait(10)


def screenshot(display: str, path: Path) -> np.ndarray:
    """The whole X screen as (H, W, 3) uint8 BGR: xwd's dump of the root window, decoded here."""
    proc = subprocess.run(["xwd", "-display", display, "-root", "-silent"], check=True, timeout=30,
                          capture_output=True)
    image = read_xwd(proc.stdout)
    cv2.imwrite(str(path), image)  # kept for a look when the test fails
    return image


def read_xwd(data: bytes) -> np.ndarray:
    """A 24-bit TrueColor XWD (X Window Dump) image, 24 or 32 bits per pixel -> (H, W, 3) uint8 BGR."""
    header = np.frombuffer(data[:100], ">u4")  # XWDFileHeader: 25 big-endian CARD32
    header_size, version, _, depth, width, height, _, byte_order = (int(v) for v in header[:8])
    bits_per_pixel, bytes_per_line = int(header[11]), int(header[12])
    masks, ncolors = [int(m) for m in header[14:17]], int(header[19])
    assert version == 7 and depth == 24 and bits_per_pixel in (24, 32), (version, depth, bits_per_pixel)
    start = header_size + 12 * ncolors  # window name, then the colormap (12 bytes per XWDColor)
    nbytes = bits_per_pixel // 8
    raw = np.frombuffer(data[start : start + height * bytes_per_line], np.uint8).reshape(height, bytes_per_line)
    raw = raw[:, : width * nbytes].reshape(height, width, nbytes).astype(np.uint32)
    order = range(nbytes) if byte_order == 0 else range(nbytes - 1, -1, -1)  # 0: least significant byte first
    pixels = sum(raw[:, :, i] << (8 * shift) for shift, i in enumerate(order))
    channels = [(pixels & m) >> ((m & -m).bit_length() - 1) for m in masks]  # red, green, blue
    return np.dstack(channels[::-1]).astype(np.uint8)


def test_window_shows_the_overlay(xvfb: str, fruit_bundle: Path, tmp_path: Path) -> None:
    folder = tmp_path / "one"
    folder.mkdir()
    image = np.full((240, 320, 3), 200, np.uint8)  # BGR
    cv2.circle(image, (160, 120), 60, (40, 40, 220), -1)
    cv2.imwrite(str(folder / "apple.png"), image)
    frame = image[:, :, ::-1].copy()
    (tmp_path / "edge.toml").write_text(RENDER_TOML)
    # What the window must show: the same explanation and rendering, computed here.
    explainer = Explainer.load(fruit_bundle)
    ex = explainer.explain(frame)
    config = RenderConfig(show_fps=False, threshold=0.0, alpha=0.6)
    expected = render(frame, ex, config, top=top_entries(ex.probabilities, explainer.class_names, 3))[:, :, ::-1]
    assert np.abs(expected.astype(int) - image).mean() > 40

    env = dict(os.environ, DISPLAY=xvfb, PYTHONPATH=os.pathsep.join(p for p in (gui_pythonpath(), str(REPO)) if p),
               QT_QPA_PLATFORM="xcb")
    cmd = [sys.executable, "-m", "edge", "run", "--model", str(fruit_bundle), "--source", f"images:{folder}",
           "--repeat", "--config", str(tmp_path / "edge.toml"), "--preview", "opencv"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        best, screen = 1.0, None
        deadline = time.monotonic() + 60
        while best > 0.01 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.5)
            screen = screenshot(xvfb, tmp_path / "screen.png")
            scores = cv2.matchTemplate(screen, expected, cv2.TM_SQDIFF_NORMED)
            best, _, (x, y), _ = cv2.minMaxLoc(scores)
        assert screen is not None and proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        shown = screen[y : y + expected.shape[0], x : x + expected.shape[1]].astype(int)
        assert best <= 0.01 and np.abs(shown - expected).mean() < 3, f"best match {best:.3f}"
        assert np.abs(shown - image).mean() > 40  # the overlay, not the bare frame
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=10)
        assert proc.returncode == 0, stderr
    finally:
        proc.kill()


def test_preview_refuses_clearly_without_gui_or_display(monkeypatch: pytest.MonkeyPatch) -> None:
    sink = OpenCVPreviewSink(PreviewConfig())
    if not opencv_has_gui():
        with pytest.raises(SinkError, match=r"no GUI.*--no-display"):
            sink.open()
        return
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(SinkError, match=r"no display.*--no-display"):
        sink.open()
