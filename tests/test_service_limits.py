"""The unit's LimitNOFILE=, TasksMax= and MemoryMax= leave room over what the service measurably needs: the service's
command (images, repeated, browser view, disk log) under the unit's descriptor limit, with two viewers and then the
view's connection cap filled by slow and oversized requests, stays at less than half of each ceiling."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest
from conftest import REPO
from edge_process import EdgeProcess

UNIT = REPO / "systemd" / "edge-explainer.service"


def unit_limits() -> tuple[int, int, float]:
    """(LimitNOFILE, TasksMax, MemoryMax in MB) from the shipped unit."""
    text = UNIT.read_text()
    found = {key: re.search(rf"^{key}=(\d+)([KMG]?)$", text, re.MULTILINE) for key in ("LimitNOFILE", "TasksMax",
                                                                                      "MemoryMax")}
    missing = [key for key, match in found.items() if match is None]
    assert not missing, f"the unit sets no {', '.join(missing)}"
    nofile, tasks, memory = (found[k] for k in ("LimitNOFILE", "TasksMax", "MemoryMax"))
    assert nofile and tasks and memory
    scale = {"": 1 / 2**20, "K": 1 / 1024, "M": 1, "G": 1024}[memory.group(2)]
    return int(nofile.group(1)), int(tasks.group(1)), int(memory.group(1)) * scale


def _drain(response: object) -> None:
    with contextlib.suppress(OSError):
        while response.read(65536):  # type: ignore[attr-defined]
            pass


@pytest.mark.slow
def test_measured_needs_fit_the_unit_limits_with_room(fruit_bundle: Path, tmp_path: Path) -> None:
    nofile, tasks, memory_mb = unit_limits()
    samples = REPO / "samples"
    args = ["--model", str(fruit_bundle), "--source", f"images:{samples}", "--repeat", "--log-dir",
            str(tmp_path / "log")]
    with EdgeProcess(args, max_files=nofile) as edge:
        port = urlparse(edge.url).port
        viewers = [urllib.request.urlopen(edge.url + "stream.mjpg", timeout=10) for _ in range(2)]
        for viewer in viewers:
            threading.Thread(target=_drain, args=(viewer,), daemon=True).start()
        flood: list[socket.socket] = []
        for i in range(120):  # far beyond the default cap of 32 connections
            with contextlib.suppress(OSError):
                s = socket.create_connection(("127.0.0.1", port or 0), timeout=5)
                flood.append(s)
                s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n" + (b"X-Big: " + b"a" * 60000 + b"\r\n") * (i % 2))
        peak = (0, 0, 0.0)
        frames0 = len(edge.frames)
        for _ in range(15):
            peak = tuple(max(a, b) for a, b in zip(peak, edge.usage(), strict=True))  # type: ignore[assignment]
            time.sleep(0.2)
        assert len(edge.frames) > frames0  # still explaining
        for s in flood:
            s.close()
        for viewer in viewers:
            viewer.close()
        assert not any("Too many open files" in line for line in edge.stderr)
    threads, fds, rss_mb = peak
    print(f"peak: {threads} threads (TasksMax {tasks}), {fds} descriptors (LimitNOFILE {nofile}), "
          f"{rss_mb:.0f} MB RSS (MemoryMax {memory_mb:.0f} MB)")
    assert 2 * threads <= tasks and 2 * fds <= nofile and 2 * rss_mb <= memory_mb, (peak, (tasks, nofile, memory_mb))
