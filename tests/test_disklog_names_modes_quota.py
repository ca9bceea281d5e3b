"""Disk log, the files it writes: names with the UTC stamp, file modes, compact JSON lines and the repair of a
dangling last line, stale temporaries, the quota's and the rotation's boundaries and which files go first. In-process,
so that mutation testing selects these tests."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from disklog_support import LOGGER, log_frames, logged, open_sink
from test_disklog import make_result

from edge.records import SinkError
from edge.sinks import DiskLogConfig, DiskLogSink, read_jsonl
from edge.sinks.logdir import IMAGES, JSONL


@pytest.fixture
def tz_elsewhere() -> Iterator[None]:
    """Local time 5 h behind UTC (the test machine's own zone is often UTC, where local and UTC stamps agree)."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "EST+5"
    time.tzset()
    yield
    if old is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old
    time.tzset()


def test_file_names_carry_the_utc_stamp_to_the_millisecond(tmp_path: Path, tz_elsewhere: None) -> None:
    sink = open_sink(tmp_path / "log")
    sink.handle(make_result(3, t=1_700_000_000.0625))  # 2023-11-14 22:13:20.0625 UTC
    sink.close()
    record = read_jsonl(tmp_path / "log" / JSONL)[0]
    assert record["frame_jpeg"] == f"{IMAGES}/20231114T221320.062Z-00000003-frame.jpg"
    assert record["overlay_jpeg"] == f"{IMAGES}/20231114T221320.062Z-00000003-overlay.jpg"


def test_files_are_readable_by_all_and_writable_by_the_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        sink = open_sink(tmp_path / "log")
        sink.handle(make_result(0))
        sink.close()
    finally:
        os.umask(old)
    files = [tmp_path / "log" / JSONL, *(tmp_path / "log" / IMAGES).iterdir()]
    assert len(files) == 3 and {f.stat().st_mode & 0o777 for f in files} == {0o644}


@pytest.mark.parametrize("tail", [b"", b"{", b'{"frame": 1}\n', b'{"frame": 1}\n{"fra'])
def test_a_record_after_a_reopen_starts_on_a_line_of_its_own_and_only_then(tmp_path: Path, tail: bytes) -> None:
    """A crash may leave the JSONL empty, ending in a newline, or ending mid-line (one byte long at the least)."""
    log = tmp_path / "log"
    open_sink(log).close()
    (log / JSONL).write_bytes(tail)
    sink = open_sink(log, save_frames=False, save_overlays=False)
    sink.handle(make_result(7))
    sink.close()
    data = (log / JSONL).read_bytes()
    repaired = tail + b"\n" if tail and not tail.endswith(b"\n") else tail
    assert data.startswith(repaired) and data.count(b"\n") == repaired.count(b"\n") + 1
    assert read_jsonl(log / JSONL)[-1]["frame"] == 7


def _total(directory: Path) -> int:
    return sum(p.stat().st_size for p in [directory / JSONL, *(directory / IMAGES).iterdir()])


def test_the_quota_zero_means_any_one_means_one_and_the_budget_is_inclusive(tmp_path: Path) -> None:
    unlimited = tmp_path / "unlimited"
    log_frames(unlimited, 5, max_files=0, max_mb=0.0)
    assert len(list((unlimited / IMAGES).iterdir())) == 10
    one = tmp_path / "one"
    log_frames(one, 3, max_files=1, max_mb=0.0)
    assert [p.name for p in (one / IMAGES).iterdir()] == ["20231114T221322.000Z-00000002-overlay.jpg"]
    # The same 5 frames with a budget of exactly what they take: nothing is deleted (at the budget is not over it).
    exact = tmp_path / "exact"
    log_frames(exact, 5, max_files=0, max_mb=_total(unlimited) / (1024 * 1024))
    assert _total(exact) == _total(unlimited) and len(list((exact / IMAGES).iterdir())) == 10
    # A budget that the images fit in only without the JSONL being written: it counts too.
    images_only = _total(unlimited) - (unlimited / JSONL).stat().st_size
    counted = tmp_path / "counted"
    log_frames(counted, 5, max_files=0, max_mb=(images_only + 1) / (1024 * 1024))
    assert _total(counted) <= images_only + 1 and len(list((counted / IMAGES).iterdir())) < 10


def test_the_jsonl_rotates_only_beyond_its_size(tmp_path: Path) -> None:
    first = tmp_path / "first"
    log_frames(first, 3, save_frames=False, save_overlays=False)
    size = (first / JSONL).stat().st_size
    exact = tmp_path / "exact"
    log_frames(exact, 3, save_frames=False, save_overlays=False, jsonl_max_mb=size / (1024 * 1024))
    assert not list(exact.glob("predictions-*.jsonl")) and (exact / JSONL).stat().st_size == size


def test_records_are_compact_json_lines(tmp_path: Path) -> None:
    """No spaces after separators: a tenth less on the card, and one record per line whatever it holds."""
    log_frames(tmp_path / "log", 1)
    (line,) = (tmp_path / "log" / JSONL).read_bytes().splitlines()
    assert b", " not in line and b'": ' not in line and read_jsonl(tmp_path / "log" / JSONL)[0]["frame"] == 0


def test_partial_lines_are_skipped_with_a_warning_naming_the_file(tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text('{"frame": 1}\n{"fra\n{"frame": 2}\n', encoding="utf-8")
    with caplog.at_level(logging.INFO, logger=LOGGER):
        assert read_jsonl(path) == [{"frame": 1}, {"frame": 2}]
    assert logged(caplog, logging.WARNING) == [f"{path}: skipping a partial line"]


def test_a_sink_closed_without_being_opened_closes_quietly(tmp_path: Path) -> None:
    sink = DiskLogSink(DiskLogConfig(dir=str(tmp_path / "log")))
    sink.close()
    sink.check()  # a directory that can be created: no complaint
    (tmp_path / "file").write_text("x")
    with pytest.raises(SinkError, match="file"):
        DiskLogSink(DiskLogConfig(dir=str(tmp_path / "file" / "log"))).check()


def test_open_clears_stale_temporaries(tmp_path: Path) -> None:
    log = tmp_path / "log"
    log_frames(log, 1)
    stale = log / IMAGES / ".tmp-20231114T221320.000Z-00000009-frame.jpg"  # a kill mid-write
    stale.write_bytes(b"\xff\xd8 half")
    open_sink(log).close()
    assert not stale.exists()


def test_at_reopen_the_oldest_files_go_first_whether_images_or_rotated_logs(tmp_path: Path) -> None:
    log = tmp_path / "log"
    # A rotated log stamped now, then images stamped in 2033 (frame times ahead of the clock): the log is the oldest.
    log_frames(log, 3, save_frames=False, save_overlays=False, jsonl_max_mb=0.001)
    (rotated,) = log.glob("predictions-*.jsonl")
    sink = open_sink(log)
    for i in range(2):
        sink.handle(make_result(i, t=2_000_000_000.0 + i))
    sink.close()
    sink = open_sink(log, max_files=1, save_frames=False, save_overlays=False)
    sink.handle(make_result(5, t=2_000_000_010.0))
    sink.close()
    assert not rotated.exists() and [p.name for p in (log / IMAGES).iterdir()] == [
        "20330518T033321.000Z-00000001-overlay.jpg"]

