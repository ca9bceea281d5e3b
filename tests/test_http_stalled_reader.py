"""A stream viewer that never reads is dropped within seconds, so four of them cannot lock real viewers out."""

from __future__ import annotations

import json
import socket
import time
from urllib.parse import urlsplit

import pytest
from conftest import REPO
from edge_process import EdgeProcess

TIMEOUT_S = 2.0  # [http] client_timeout_s here (10 s by default)
MAX_DROP_S = 3 * TIMEOUT_S  # an MJPEG write blocks within a few frames, then its deadline; an event stream ends at 2x


def _viewers(port: int) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /api/health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return int(json.loads(data.partition(b"\r\n\r\n")[2])["viewers"])


@pytest.mark.parametrize("path", ["/events", "/stream.mjpg"])
def test_a_viewer_that_never_reads_is_dropped_in_seconds(path: str) -> None:
    args = ["--model", str(REPO / "models" / "fruit"), "--source", "synthetic", "--size", "320x240", "--fps", "10"]
    with EdgeProcess(args, config=f"[http]\nclient_timeout_s = {TIMEOUT_S}\n") as edge:
        port = urlsplit(edge.url).port
        assert port
        idle = []
        for _ in range(4):  # every stream slot ([http] max_clients)
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
            idle.append(s)
        started = time.monotonic()
        while _viewers(port) == 0:
            time.sleep(0.05)
        while _viewers(port) > 0:
            assert time.monotonic() - started < 60, "never dropped"
            time.sleep(0.25)
        dropped_after = time.monotonic() - started
        print(f"{path}: 4 non-reading viewers dropped after {dropped_after:.1f} s")
        for s in idle:
            s.close()
        assert dropped_after < MAX_DROP_S
