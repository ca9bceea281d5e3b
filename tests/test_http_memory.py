"""The browser view's memory stays flat under image requests: 20,000 snapshots and mean heatmaps from 6 clients."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from conftest import REPO
from edge_process import EdgeProcess

REQUESTS = 20_000
WARMUP = 2_000
CLIENTS = 6
MAX_GROWTH_MB = 4.0  # measured: ~18 MB over 20,000 requests when each connection thread did its own OpenCV work


def _get(port: int, path: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _hammer(port: int, paths: list[str], count: int) -> None:
    done = [0]
    lock = threading.Lock()

    def client() -> None:
        while True:
            with lock:
                if done[0] >= count:
                    return
                done[0] += 1
                path = paths[done[0] % len(paths)]
            answer = _get(port, path)
            assert answer.startswith(b"HTTP/1.0 200"), answer[:200]

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_rss_flat_over_20000_snapshot_and_heatmap_requests() -> None:
    args = ["--model", str(REPO / "models" / "fruit"), "--source", "synthetic", "--size", "96x72", "--fps", "20"]
    with EdgeProcess(args) as edge:
        port = urlsplit(edge.url).port
        assert port
        time.sleep(1.0)
        body = _get(port, "/api/heatmaps").partition(b"\r\n\r\n")[2]
        seen = [m["class"] for m in json.loads(body) if m["frames"] > 0]
        paths = ["/snapshot.zip", *(f"/heatmap.png?class={c}" for c in seen)]
        _hammer(port, paths, WARMUP)
        before = _rss_mb(edge.pid)
        started = time.monotonic()
        _hammer(port, paths, REQUESTS - WARMUP)
        after = _rss_mb(edge.pid)
        print(f"RSS {before:.1f} -> {after:.1f} MB over {REQUESTS - WARMUP} requests "
              f"in {time.monotonic() - started:.1f} s")
        assert after - before < MAX_GROWTH_MB, f"RSS {before:.1f} -> {after:.1f} MB"
