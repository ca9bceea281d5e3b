"""The browser view under attack, loopback only: slow request heads, huge headers, resets. The server's threads,
descriptors and RSS and the camera loop's frame rate are measured while each attack runs (generous bounds: the
machine is shared)."""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from edge_process import EdgeProcess
from http_client import ask, reset

from edge.http.sink import DashboardConfig, DashboardSink

CAP = 16  # [http] max_connections in these tests
HEAD_TIMEOUT_S = 4.0  # long enough that, uncapped, every slow connection would still be open


@pytest.fixture(scope="module")
def edge(fruit_bundle: Path) -> Iterator[EdgeProcess]:
    config = f"[http]\nmax_connections = {CAP}\nhead_timeout_s = {HEAD_TIMEOUT_S}\n"
    with EdgeProcess(["--model", str(fruit_bundle), "--source", "synthetic", "--fps", "20"], config) as process:
        yield process


def _port(edge: EdgeProcess) -> int:
    port = urlparse(edge.url).port
    assert port
    return port


def _closed_by_server(s: socket.socket, within_s: float) -> bool:
    """True if the server ends the connection (an answer then EOF, or a reset) within the time."""
    s.settimeout(within_s)
    try:
        while s.recv(65536):
            pass
        return True
    except ConnectionError:
        return True
    except TimeoutError:
        return False


def _rate_between(edge: EdgeProcess, t0: float, t1: float) -> float:
    return sum(1 for t, _ in list(edge.frames) if t0 <= t < t1) / (t1 - t0)


@pytest.mark.slow
def test_slow_heads_are_capped_and_cut_at_the_deadline(edge: EdgeProcess) -> None:
    """150 connections that trickle a header byte every 0.25 s (a per-read timeout never fires): at most CAP of them
    hold a thread and a descriptor, each is cut when the head deadline passes, and the loop keeps its pace."""
    free_rate = edge.frame_rate(2.0)
    threads0, fds0, rss0 = edge.usage()
    port = _port(edge)
    slow: list[socket.socket] = []
    t0 = time.monotonic()
    for _ in range(150):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        with contextlib.suppress(OSError):
            s.sendall(b"GET /prediction.json HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        slow.append(s)
    peak = (threads0, fds0, rss0)
    while time.monotonic() < t0 + HEAD_TIMEOUT_S:
        for s in slow:
            with contextlib.suppress(OSError):
                s.send(b"a")
        peak = tuple(max(a, b) for a, b in zip(peak, edge.usage(), strict=True))  # type: ignore[assignment]
        time.sleep(0.25)
    attacked_rate = _rate_between(edge, t0, time.monotonic())
    still_open = sum(not _closed_by_server(s, 2 * HEAD_TIMEOUT_S) for s in slow)
    for s in slow:
        s.close()
    print(f"slow heads: threads {threads0} -> {peak[0]}, descriptors {fds0} -> {peak[1]}, RSS {rss0:.0f} -> "
          f"{peak[2]:.0f} MB, loop {free_rate:.1f} -> {attacked_rate:.1f} fps")
    assert peak[0] <= threads0 + CAP + 4, (threads0, peak)
    assert peak[1] <= fds0 + CAP + 8, (fds0, peak)
    assert still_open == 0
    assert ask(port, "/prediction.json").status == 200  # a real viewer gets through once they are cut
    assert attacked_rate > 0.5 * free_rate, (free_rate, attacked_rate)


@pytest.mark.slow
def test_huge_headers_get_431_and_memory_stays_flat(edge: EdgeProcess) -> None:
    """30 connections each sending 40 headers of 64 KB and never ending the head: each is refused after the head
    budget (8 KB by default), so RSS does not grow by the 78 MB sent, and the loop keeps its pace."""
    free_rate = edge.frame_rate(2.0)
    threads0, fds0, rss0 = edge.usage()
    port = _port(edge)
    header = b"X-Big: " + b"a" * 65000 + b"\r\n"
    peak = (threads0, fds0, rss0)
    held: list[socket.socket] = []
    t0 = time.monotonic()
    for _ in range(30):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        with contextlib.suppress(OSError):
            s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            for _ in range(40):
                s.sendall(header)
        held.append(s)
        peak = tuple(max(a, b) for a, b in zip(peak, edge.usage(), strict=True))  # type: ignore[assignment]
    time.sleep(0.5)
    peak = tuple(max(a, b) for a, b in zip(peak, edge.usage(), strict=True))  # type: ignore[assignment]
    attacked_rate = _rate_between(edge, t0, time.monotonic())
    still_open = sum(not _closed_by_server(s, 2 * HEAD_TIMEOUT_S) for s in held)
    for s in held:
        s.close()
    print(f"big headers: RSS {rss0:.0f} -> {peak[2]:.0f} MB, threads {threads0} -> {peak[0]}, descriptors "
          f"{fds0} -> {peak[1]}, loop {free_rate:.1f} -> {attacked_rate:.1f} fps")
    assert peak[2] - rss0 < 40, (rss0, peak)
    assert peak[0] <= threads0 + CAP + 4 and peak[1] <= fds0 + CAP + 8, ((threads0, fds0), peak)
    assert still_open == 0
    assert attacked_rate > 0.5 * free_rate, (free_rate, attacked_rate)
    assert ask(port, "/", headers={"X-Big": "a" * 9000}).status == 431


def test_resets_are_one_debug_line_at_most(caplog: pytest.LogCaptureFixture,
                                           capfd: pytest.CaptureFixture[str]) -> None:
    """Clients that reset mid-head, mid-answer and mid-stream: no traceback anywhere, nothing above debug level,
    at most one line each."""
    caplog.set_level(logging.DEBUG)
    view = DashboardSink(DashboardConfig(enabled=True, port=0))
    view.open()
    try:
        view.hub.publish(b"\xff\xd8" + bytes(200_000), {"frame": 0})
        for request in (b"GET /predic", b"GET /prediction.json HTTP/1.1\r\nHost: 127.0.0.1\r\n",
                        b"GET /frame.jpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"):
            for _ in range(12):
                s = socket.create_connection(("127.0.0.1", view.port))
                s.sendall(request)
                reset(s)
        for _ in range(4):
            s = socket.create_connection(("127.0.0.1", view.port))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            s.recv(100)
            reset(s)
            for i in range(3):
                view.hub.publish(b"\xff\xd8" + bytes(200_000), {"frame": i})
                time.sleep(0.05)
        time.sleep(0.5)
    finally:
        view.close()
    stderr = capfd.readouterr().err
    assert "Traceback" not in stderr and "Exception" not in stderr, stderr[-3000:]
    ours = [r for r in caplog.records if r.name.startswith(("edge.http", "edge.http.sink"))]
    loud = [r.getMessage() for r in ours if r.levelno > logging.DEBUG and "browser view at" not in r.getMessage()]
    assert loud == [] and not any(r.exc_info for r in ours)
    about_resets = [r.getMessage() for r in ours if '"' not in r.getMessage()]  # access lines quote the request
    assert len(about_resets) <= 1 + 3 * 12 + 4, about_resets
