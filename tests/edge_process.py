"""An `edge run` subprocess for the browser-view tests: its URL, its frame rate (from --stdout records) and its
threads, descriptors and RSS (from /proc), so a test can watch the loop and the server while it attacks them."""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from types import TracebackType

from conftest import REPO


class EdgeProcess:
    """edge run --http 0 --stdout with extra args; use as a context manager."""

    def __init__(self, args: list[str], config: str = "", max_files: int | None = None) -> None:
        self.args = args
        self.max_files = max_files  # RLIMIT_NOFILE for the process, as the unit's LimitNOFILE sets it
        self.config_text = config
        self.url = ""
        self.frames: deque[tuple[float, int]] = deque(maxlen=10000)  # (arrival time, frame number)
        self.stderr: list[str] = []
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> EdgeProcess:
        cmd = [sys.executable, "-m", "edge", "run", "--http", "0", "--stdout", "--no-display", *self.args]
        if self.config_text:
            config = Path(os.environ.get("TMPDIR", "/tmp")) / f"edge-http-test-{os.getpid()}-{id(self)}.toml"
            config.write_text(self.config_text)
            cmd += ["--config", str(config)]
        limit = self.max_files

        def set_limits() -> None:
            if limit is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

        self._proc = subprocess.Popen(cmd, cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)),
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                      preexec_fn=set_limits)
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()
        deadline = time.monotonic() + 90
        while not (self.url and self.frames):
            assert self._proc.poll() is None, "edge run exited early:\n" + "".join(self.stderr[-20:])
            assert time.monotonic() < deadline, "edge run did not start:\n" + "".join(self.stderr[-20:])
            time.sleep(0.1)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        assert self._proc is not None
        self._proc.terminate()
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(5)

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def _read_stdout(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            with contextlib.suppress(ValueError, KeyError):
                self.frames.append((time.monotonic(), int(json.loads(line)["frame"])))

    def _read_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        for line in self._proc.stderr:
            self.stderr.append(line)
            if match := re.search(r"browser view at (http://\S+)", line):
                self.url = match.group(1)

    def frame_rate(self, seconds: float) -> float:
        """Frames explained per second over the next `seconds`."""
        t0 = time.monotonic()
        time.sleep(seconds)
        return sum(1 for t, _ in list(self.frames) if t >= t0) / (time.monotonic() - t0)

    def usage(self) -> tuple[int, int, float]:
        """(threads, open descriptors, RSS in MB) of the process now."""
        status = Path(f"/proc/{self.pid}/status").read_text()
        threads = int(re.search(r"^Threads:\s+(\d+)", status, re.MULTILINE).group(1))  # type: ignore[union-attr]
        rss_kb = int(re.search(r"^VmRSS:\s+(\d+)", status, re.MULTILINE).group(1))  # type: ignore[union-attr]
        return threads, len(os.listdir(f"/proc/{self.pid}/fd")), rss_kb / 1024
