"""A camera missing at start is waited for (retry with backoff, STATUS= and one journal line per change), a broken
config is not; on stub sources and on the fake picamera2 through `edge run`."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from picamera2_fixture import fake_picamera2

from edge.service.cli import main
from edge.sources import SourceError
from edge.sources.base import SourceBase, SourceUnavailableError
from edge.sources.wait import open_when_available


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[ModuleType]:
    yield from fake_picamera2(monkeypatch, tmp_path)


class LateSource(SourceBase):
    """Unavailable for the first `absent` opens (with a reason that changes once), then opens."""

    name = "late"

    def __init__(self, absent: int, error: type[SourceError] = SourceUnavailableError) -> None:
        self.absent = absent
        self.error = error
        self.attempts = 0

    def open(self) -> None:
        self.attempts += 1
        if self.attempts <= self.absent:
            raise self.error("late: no camera found" if self.attempts <= 3 else "late: camera busy")


class Recorder:
    """A Notifier stand-in that keeps what would go to systemd."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def ready(self, status: str = "") -> None:
        self.messages.append(f"READY=1 STATUS={status}")

    def status(self, text: str) -> None:
        self.messages.append(f"STATUS={text}")

    def watchdog(self) -> None:
        self.messages.append("WATCHDOG=1")


def test_absent_source_is_waited_for_with_one_line_per_change(caplog: pytest.LogCaptureFixture) -> None:
    source, notifier = LateSource(absent=6), Recorder()
    with caplog.at_level(logging.INFO, logger="edge.sources.wait"):
        assert open_when_available(source, threading.Event(), notifier, first_backoff_s=0.01, max_backoff_s=0.02)
    assert source.attempts == 7
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3, lines  # waiting starts, the reason changes, it ends: not one per attempt
    assert "late: no camera found; waiting for it" in lines[0] and "still waiting: late: camera busy" in lines[1]
    assert lines[2].startswith("late: available after")
    assert [m for m in notifier.messages if m.startswith("READY=1")] == [
        "READY=1 STATUS=waiting for late: late: no camera found"]  # up, so TimeoutStartSec does not kill it
    assert sum(m.startswith("STATUS=waiting for late") for m in notifier.messages) == 6
    assert notifier.messages.count("WATCHDOG=1") == 6 and notifier.messages[-1] == "STATUS=late available"


def test_stop_ends_the_wait() -> None:
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    t0 = time.monotonic()
    assert not open_when_available(LateSource(absent=10**9), stop, Recorder(), first_backoff_s=5.0)
    assert time.monotonic() - t0 < 3.0


def test_config_errors_are_not_waited_for() -> None:
    source = LateSource(absent=1, error=SourceError)
    with pytest.raises(SourceError):
        open_when_available(source, threading.Event(), Recorder(), first_backoff_s=0.01)
    assert source.attempts == 1


def test_edge_run_waits_for_a_camera_that_comes_late(fake: ModuleType, fruit_bundle: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(fake, "CAMERAS", 0)  # boot: the camera is not enumerated yet
    threading.Timer(1.0, lambda: monkeypatch.setattr(fake, "CAMERAS", 1)).start()
    log = tmp_path / "log"
    with caplog.at_level(logging.INFO):
        code = main(["run", "--model", str(fruit_bundle), "--source", "picamera2", "--size", "320x240",
                     "--max-frames", "3", "--no-display", "--log-dir", str(log), "--log-every-frame"])
    assert code == 0
    records = [json.loads(line) for line in (log / "predictions.jsonl").read_text().splitlines()]
    assert len(records) == 3 and all(r["source"] == "picamera2" for r in records)
    waits = [r.getMessage() for r in caplog.records if r.name == "edge.sources.wait"]
    assert len(waits) == 2 and "no camera 0 found; waiting for it" in waits[0] and "available after" in waits[1]


def test_edge_run_config_error_still_exits_2(fake: ModuleType, fruit_bundle: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", "--model", str(fruit_bundle), "--source", "picamera2", "--no-display", "--max-frames", "1",
                 "--size", "8192x8192"])  # 67 MP
    assert code == 2
    assert "max_megapixels" in capsys.readouterr().err
