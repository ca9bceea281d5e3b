"""The browser view: Debian's headless Chromium opens the MJPEG page; its screenshot shows the overlay."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import REPO

from edge.sinks.base import SinkError
from edge.sinks.mjpeg import MjpegConfig, MjpegSink, is_loopback

pytestmark = pytest.mark.slow

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        if path := shutil.which(name):
            return path
    pytest.skip("chromium not installed (apt install chromium)")


@pytest.fixture
def server(fruit_bundle: Path, tmp_path: Path) -> Iterator[tuple[str, np.ndarray]]:
    """edge run on one image, repeated, serving the browser view on a free port: (url, the image as RGB)."""
    folder = tmp_path / "one"
    folder.mkdir()
    image = np.full((240, 320, 3), 200, np.uint8)  # BGR
    cv2.circle(image, (160, 120), 60, (40, 40, 220), -1)
    cv2.imwrite(str(folder / "apple.png"), image)
    config = tmp_path / "edge.toml"
    # No fps text (so every overlay is the same picture) and the heatmap everywhere, clearly visible.
    config.write_text("[render]\nshow_fps = false\nthreshold = 0.0\nalpha = 0.6\n[source]\nfps = 10\n")
    cmd = [sys.executable, "-m", "edge", "run", "--model", str(fruit_bundle), "--source", f"images:{folder}",
           "--repeat", "--config", str(config), "--http", "0", "--no-display"]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    url = ""
    try:
        deadline = time.monotonic() + 60
        while not url and time.monotonic() < deadline:
            line = proc.stderr.readline()
            assert line or proc.poll() is None, "edge run exited early"
            if match := re.search(r"browser view at (http://\S+)", line):
                url = match.group(1)
        assert url
        yield url, image[:, :, ::-1]
    finally:
        proc.terminate()
        proc.wait(10)


def fetch(url: str) -> bytes:
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return response.read()
        except urllib.error.HTTPError as e:
            if e.code != 503 or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_chromium_screenshot_shows_the_overlay(server: tuple[str, np.ndarray], tmp_path: Path) -> None:
    url, frame = server
    overlay = cv2.imdecode(np.frombuffer(fetch(url + "frame.jpg"), np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]
    assert overlay.shape == frame.shape
    assert np.abs(overlay.astype(int) - frame).mean() > 40  # the heatmap really changes the picture
    shot = tmp_path / "shot.png"
    proc = subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                           "--window-size=640,480", f"--screenshot={shot}", "--virtual-time-budget=3000", url],
                          capture_output=True, text=True, timeout=120, check=False)
    assert shot.exists(), proc.stderr[-2000:]
    screen = cv2.imread(str(shot))[:, :, ::-1]
    shown = screen[: frame.shape[0], : frame.shape[1]].astype(int)  # the <img> sits at the page's top-left
    assert np.abs(shown - overlay).mean() < 6  # the page shows the overlay ...
    assert np.abs(shown - frame).mean() > 40  # ... not the bare frame
    dom = subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
                          "--virtual-time-budget=3000", url], capture_output=True, text=True, timeout=120, check=False)
    prediction = fetch(url + "prediction.json").decode()
    label = re.search(r'"label": "(\w+)"', prediction)
    assert label and re.search(rf'<div id="p">{label.group(1)} \d+%', dom.stdout), dom.stdout[-2000:]


def test_fixed_routes_only_and_stream_headers(server: tuple[str, np.ndarray]) -> None:
    url, _ = server
    for path in ("../etc/passwd", "edge/cli.py", "stream.mjpg/../frame.jpg", "%2e%2e/etc/passwd"):
        with pytest.raises(urllib.error.HTTPError) as err:
            fetch(url + path)
        assert err.value.code == 404, path
    with urllib.request.urlopen(url + "stream.mjpg", timeout=10) as response:
        assert response.headers["Content-Type"].startswith("multipart/x-mixed-replace")
        head = response.read(200)
    assert head.startswith(b"--edgeframe\r\nContent-Type: image/jpeg")


def test_non_loopback_needs_a_token_and_checks_it() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0")
    with pytest.raises(SinkError, match=r"\[http\] host '0.0.0.0' is not loopback: set \[http\] token"):
        MjpegSink(MjpegConfig(host="0.0.0.0"))
    sink = MjpegSink(MjpegConfig(enabled=True, host="127.0.0.1", port=0, token="s3cret"))
    sink.open()
    try:
        with pytest.raises(urllib.error.HTTPError) as err:
            fetch(sink.url + "prediction.json")
        assert err.value.code == 401
        assert fetch(sink.url + "prediction.json?token=s3cret") == b"{}"
        page = fetch(sink.url + "?token=s3cret").decode()
        assert 'src="stream.mjpg?token=s3cret"' in page
    finally:
        sink.close()


def _frame_number(url: str) -> int:
    import json

    deadline = time.monotonic() + 60
    while True:  # the record is empty until the first frame is explained
        record = json.loads(fetch(url + "prediction.json"))
        if "frame" in record or time.monotonic() > deadline:
            return int(record["frame"])
        time.sleep(0.1)


def test_client_cap_and_stalled_clients_never_slow_the_loop(fruit_bundle: Path, tmp_path: Path) -> None:
    """Two viewers that request the stream and never read fill the cap (a third gets 503); the loop keeps its pace."""
    import socket
    from urllib.parse import urlparse

    config = tmp_path / "edge.toml"
    config.write_text("[http]\nmax_clients = 2\n")
    cmd = [sys.executable, "-m", "edge", "run", "--model", str(fruit_bundle), "--source", "synthetic",
           "--config", str(config), "--http", "0", "--no-display"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    stalled: list[socket.socket] = []
    try:
        url = ""
        while not url:
            line = proc.stderr.readline()
            assert line or proc.poll() is None, "edge run exited early"
            if match := re.search(r"browser view at (http://\S+)", line):
                url = match.group(1)
        _frame_number(url)
        t0, f0 = time.monotonic(), _frame_number(url)
        time.sleep(2.0)
        free_rate = (_frame_number(url) - f0) / (time.monotonic() - t0)
        address = urlparse(url)
        for _ in range(2):
            s = socket.create_connection((address.hostname, address.port))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a tiny window: the server's writes block soon
            s.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: x\r\n\r\n")
            stalled.append(s)
        time.sleep(1.0)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url + "stream.mjpg", timeout=10)
        assert refused.value.code == 503
        t1, f1 = time.monotonic(), _frame_number(url)
        time.sleep(2.0)
        stalled_rate = (_frame_number(url) - f1) / (time.monotonic() - t1)
        assert free_rate > 20 and stalled_rate > 0.3 * free_rate, (free_rate, stalled_rate)
    finally:
        for s in stalled:
            s.close()
        proc.terminate()
        proc.wait(10)
