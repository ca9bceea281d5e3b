"""[log] keep_days: the log's own files older than N days go, by the quota's rules, on a fake clock."""

from __future__ import annotations

import os
from pathlib import Path

from test_disklog import make_result

from edge.sinks import DiskLogConfig, DiskLogSink, read_jsonl
from edge.sinks.logdir import IMAGES, JSONL

T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z
HOUR = 3600.0


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _run(directory: Path, clock: Clock, hours: list[float], **kw: object) -> DiskLogSink:
    """One logged frame (frame + overlay JPEG) at each of hours after T0, the clock following the frames."""
    config = DiskLogConfig(dir=str(directory), fsync=False, min_free_mb=0.0, **kw)  # type: ignore[arg-type]
    sink = DiskLogSink(config, every_frame_default=True, clock=clock)
    sink.open()
    try:
        for i, hour in enumerate(hours):
            clock.now = T0 + hour * HOUR
            sink.handle(make_result(i, t=clock.now))
    finally:
        sink.close()
    return sink


def _frames_on_disk(directory: Path) -> list[int]:
    return sorted({int(p.name.split("-")[1]) for p in (directory / IMAGES).iterdir()})


def test_files_older_than_keep_days_are_deleted_and_others_are_kept(tmp_path: Path) -> None:
    log = tmp_path / "log"
    log.mkdir()
    theirs = {log / "holiday.jpg": b"not ours", log / "predictions-2020.jsonl": b'{"not": "ours"}\n'}
    for path, data in theirs.items():
        path.write_bytes(data)
        os.utime(path, (T0 - 400 * 24 * HOUR, T0 - 400 * 24 * HOUR))  # very old, but not the log's own names
    hours = [6.0 * i for i in range(20)]  # a frame every 6 h for 5 days: the last at 114 h
    _run(log, Clock(T0), hours, keep_days=2)
    # Kept: frames of the last 48 h before the last frame (66 h and later); deleted: everything older.
    assert _frames_on_disk(log) == [i for i, h in enumerate(hours) if h >= 114 - 48]
    assert all(path.read_bytes() == data for path, data in theirs.items())
    rotated = sorted(p.name for p in log.glob("predictions-2*.jsonl") if p.name != "predictions-2020.jsonl")
    assert rotated and all(name >= "predictions-20231117" for name in rotated)  # daily, the old ones deleted
    records = [r for path in [*sorted(log.glob("predictions-2023*.jsonl")), log / JSONL] for r in read_jsonl(path)]
    # Rotated daily at 30, 60 and 90 h (each name the time of its newest record): the 30 h and 60 h files are gone.
    assert [r["frame"] for r in records] == list(range(11, 20))


def test_a_restart_after_a_long_pause_expires_at_open(tmp_path: Path) -> None:
    log = tmp_path / "log"
    clock = Clock(T0)
    _run(log, clock, [0.0, 1.0, 2.0], keep_days=1)
    assert _frames_on_disk(log) == [0, 1, 2]
    clock.now = T0 + 25.5 * HOUR
    sink = DiskLogSink(DiskLogConfig(dir=str(log), fsync=False, keep_days=1), clock=clock)
    sink.open()
    sink.close()
    assert _frames_on_disk(log) == [2]  # 0 h and 1 h are more than 24 h before 25.5 h; 2 h is not
    assert (log / JSONL).is_file()  # the current JSONL is never deleted


def test_both_limits_apply_the_tighter_wins(tmp_path: Path) -> None:
    hours = [float(i) for i in range(10)]
    assert _frames_on_disk(_run(tmp_path / "a", Clock(T0), hours, keep_days=1, max_files=4).dir) == [8, 9]
    assert _frames_on_disk(_run(tmp_path / "b", Clock(T0), hours, keep_days=0.25).dir) == [3, 4, 5, 6, 7, 8, 9]


def test_keep_days_zero_keeps_every_age(tmp_path: Path) -> None:
    hours = [24.0 * i for i in range(8)]
    assert _frames_on_disk(_run(tmp_path / "log", Clock(T0), hours).dir) == list(range(8))
