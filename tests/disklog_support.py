"""The disk log tests' shared steps: a sink opened on a directory (no fsync, every frame logged), frames logged
through it, and the messages its logger gave at a level."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_disklog import make_result

from edge.sinks import DiskLogConfig, DiskLogSink

LOGGER = "edge.sinks.disklog"


def open_sink(directory: Path, **kw: object) -> DiskLogSink:
    config = DiskLogConfig(dir=str(directory), fsync=False, **kw)  # type: ignore[arg-type]
    sink = DiskLogSink(config, every_frame_default=True)
    sink.open()
    return sink


def logged(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == level]


def log_frames(directory: Path, frames: int, **kw: object) -> DiskLogSink:
    sink = open_sink(directory, **kw)
    for i in range(frames):
        sink.handle(make_result(i))
    sink.close()
    return sink

