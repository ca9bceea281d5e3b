"""Disk log, what a user reads back: its counters and messages, the file names' UTC stamp, file modes, the quota's
boundaries and the repair of a dangling last line. In-process, so that mutation testing selects these tests."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from test_disklog import make_result

from edge.records import Result, SinkError
from edge.sinks import DiskLogConfig, DiskLogSink, read_jsonl
from edge.sinks.logdir import IMAGES, JSONL

LOGGER = "edge.sinks.disklog"


def _sink(directory: Path, **kw: object) -> DiskLogSink:
    config = DiskLogConfig(dir=str(directory), fsync=False, **kw)  # type: ignore[arg-type]
    sink = DiskLogSink(config, every_frame_default=True)
    sink.open()
    return sink


def _messages(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == level]


def test_counters_and_the_messages_of_a_normal_run(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    log = tmp_path / "log"
    with caplog.at_level(logging.INFO, logger=LOGGER):
        sink = _sink(log, min_free_mb=0.0)
        for i in range(3):
            sink.handle(make_result(i))
        sink.close()
    assert (sink.records, sink.records_failed, sink.images_skipped, sink.image_errors) == (3, 0, 0, 0)
    summary = f"{log}: 3 records, 0 frames without all their images"
    assert _messages(caplog, logging.INFO) == [f"logging to {log}", summary]
    assert not _messages(caplog, logging.WARNING) and not _messages(caplog, logging.ERROR)
    sink.close()  # a second close is harmless and says nothing more
    assert len(_messages(caplog, logging.INFO)) == 2


def test_below_the_free_space_floor_every_frame_counts_and_the_warning_comes_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    log = tmp_path / "log"
    with caplog.at_level(logging.INFO, logger=LOGGER):
        sink = _sink(log, min_free_mb=1e7)
        for i in range(3):
            sink.handle(make_result(i))
        sink.close()
    assert sink.records == 3 and sink.images_skipped == 3 and sink.image_errors == 0
    (warning,) = _messages(caplog, logging.WARNING)
    assert warning.startswith(f"{log}: ")
    assert warning.endswith(" MB free, below min_free_mb 10000000: not saving images")
    assert _messages(caplog, logging.INFO)[-1] == f"{log}: 3 records, 3 frames without all their images"


def test_an_empty_dir_is_refused_by_its_key_and_a_live_source_logs_by_the_policy(tmp_path: Path) -> None:
    with pytest.raises(SinkError) as refused:
        DiskLogSink(DiskLogConfig(dir=""))
    assert str(refused.value) == "[log] dir is empty: give a log directory (--log-dir DIR)"
    sink = DiskLogSink(DiskLogConfig(dir=str(tmp_path / "log"), fsync=False, save_frames=False, save_overlays=False))
    sink.open()  # every_frame_default left at its default: a live source, logged every_s (10 s) or on a change
    for i in range(4):
        sink.handle(make_result(i, t=1_700_000_000.0 + 0.1 * i))
    sink.close()
    assert sink.records == 1


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
    sink = _sink(tmp_path / "log")
    sink.handle(make_result(3, t=1_700_000_000.0625))  # 2023-11-14 22:13:20.0625 UTC
    sink.close()
    record = read_jsonl(tmp_path / "log" / JSONL)[0]
    assert record["frame_jpeg"] == f"{IMAGES}/20231114T221320.062Z-00000003-frame.jpg"
    assert record["overlay_jpeg"] == f"{IMAGES}/20231114T221320.062Z-00000003-overlay.jpg"


def test_files_are_readable_by_all_and_writable_by_the_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        sink = _sink(tmp_path / "log")
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
    _sink(log).close()
    (log / JSONL).write_bytes(tail)
    sink = _sink(log, save_frames=False, save_overlays=False)
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
    _log_frames(unlimited, 5, max_files=0, max_mb=0.0)
    assert len(list((unlimited / IMAGES).iterdir())) == 10
    one = tmp_path / "one"
    _log_frames(one, 3, max_files=1, max_mb=0.0)
    assert [p.name for p in (one / IMAGES).iterdir()] == ["20231114T221322.000Z-00000002-overlay.jpg"]
    # The same 5 frames with a budget of exactly what they take: nothing is deleted (at the budget is not over it).
    exact = tmp_path / "exact"
    _log_frames(exact, 5, max_files=0, max_mb=_total(unlimited) / (1024 * 1024))
    assert _total(exact) == _total(unlimited) and len(list((exact / IMAGES).iterdir())) == 10
    # A budget that the images fit in only without the JSONL being written: it counts too.
    images_only = _total(unlimited) - (unlimited / JSONL).stat().st_size
    counted = tmp_path / "counted"
    _log_frames(counted, 5, max_files=0, max_mb=(images_only + 1) / (1024 * 1024))
    assert _total(counted) <= images_only + 1 and len(list((counted / IMAGES).iterdir())) < 10


def test_the_jsonl_rotates_only_beyond_its_size(tmp_path: Path) -> None:
    first = tmp_path / "first"
    _log_frames(first, 3, save_frames=False, save_overlays=False)
    size = (first / JSONL).stat().st_size
    exact = tmp_path / "exact"
    _log_frames(exact, 3, save_frames=False, save_overlays=False, jsonl_max_mb=size / (1024 * 1024))
    assert not list(exact.glob("predictions-*.jsonl")) and (exact / JSONL).stat().st_size == size


def _log_frames(directory: Path, frames: int, **kw: object) -> DiskLogSink:
    sink = _sink(directory, **kw)
    for i in range(frames):
        sink.handle(make_result(i))
    sink.close()
    return sink


# -- a real full disk: a small tmpfs (needs root to mount; skipped otherwise) -------------------------------------

def _tmpfs(mount: Path, options: str) -> Iterator[Path]:
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount)], capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {proc.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    yield from _tmpfs(tmp_path / "disk", "size=512k")


@pytest.fixture
def few_inodes(tmp_path: Path) -> Iterator[Path]:
    yield from _tmpfs(tmp_path / "disk", "size=4m,nr_inodes=64")


def _noisy(index: int) -> Result:
    """A frame whose JPEG is ~15 KB, so that a 512 KiB disk fills in a few dozen frames."""
    result = make_result(index)
    noise = np.random.default_rng(index).integers(0, 256, (120, 160, 3), np.uint8)
    result.frame = dataclasses.replace(result.frame, image=noise)
    return result


def test_a_full_disk_is_counted_warned_about_throttled_and_repaired_after(
        small_disk: Path, caplog: pytest.LogCaptureFixture) -> None:
    log = small_disk / "log"
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * 64 * 1024)  # room to give back later
    frames = 260
    with caplog.at_level(logging.INFO, logger=LOGGER):
        sink = _sink(log, save_overlays=False, min_free_mb=0.0, max_files=0, max_mb=0.0)
        for i in range(frames):
            sink.handle(_noisy(i))
        filler.unlink()
        for i in range(frames, frames + 2):
            sink.handle(make_result(i))
        sink.close()
    assert sink.image_errors > 100 and sink.records_failed > 100
    assert sink.records + sink.records_failed == frames + 2
    warnings = _messages(caplog, logging.WARNING)
    assert len(warnings) == 1 + sink.image_errors // 100
    assert warnings[0].startswith(f"{log}/{IMAGES}/") and warnings[0].endswith(
        "-frame.jpg: disk full: image not saved (1 so far)") and warnings[1].endswith("(100 so far)")
    errors = _messages(caplog, logging.ERROR)
    assert len(errors) == 1 + sink.records_failed // 100
    records = read_jsonl(log / JSONL)
    first_failed = min(set(range(frames + 2)) - {r["frame"] for r in records})
    assert errors[0] == (f"{log}/{JSONL}: record for frame {first_failed} not written (1 so far): "
                         "No space left on device")
    assert errors[1].endswith(" not written (100 so far): No space left on device")
    assert not [p.name for p in (log / IMAGES).iterdir() if p.name.startswith(".")]  # temporaries removed
    # One record was cut mid-line when the disk filled; the first one after the room came back starts a new line.
    lines = (log / JSONL).read_bytes().split(b"\n")
    assert lines[-1] == b"" and len(lines) - 1 == sink.records + 1
    assert len(records) == sink.records and [r["frame"] for r in records[-2:]] == [frames, frames + 1]
    assert sink.images_skipped == sink.image_errors  # one image per frame here (no overlays)


def test_a_frame_opencv_cannot_encode_is_warned_about_by_name(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    result = make_result(0)
    result.frame = dataclasses.replace(result.frame, image=np.zeros((1, 70000, 3), np.uint8))  # beyond JPEG's limit
    with caplog.at_level(logging.INFO, logger=LOGGER):
        sink = _sink(tmp_path / "log")
        sink.handle(result)
        sink.close()
    stem = "20231114T221320.000Z-00000000"
    assert _messages(caplog, logging.WARNING) == [
        f"{tmp_path}/log/{IMAGES}/{stem}-frame.jpg: OpenCV could not encode it: image not saved (1 so far)"]
    assert sink.images_skipped == 1 and sink.image_errors == 1


def test_an_image_write_error_other_than_a_full_disk_is_named_as_the_kernel_names_it(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    log = tmp_path / "log"
    sink = _sink(log)
    stem = "20231114T221320.000Z-00000000"
    (log / IMAGES / f".tmp-{stem}-frame.jpg").symlink_to(tmp_path / "elsewhere")  # O_NOFOLLOW: ELOOP
    with caplog.at_level(logging.INFO, logger=LOGGER):
        sink.handle(make_result(0))
        sink.close()
    assert _messages(caplog, logging.WARNING) == [
        f"{log}/{IMAGES}/{stem}-frame.jpg: Too many levels of symbolic links: image not saved (1 so far)"]


def test_with_fsync_every_record_and_image_is_written_as_without(tmp_path: Path) -> None:
    sink = DiskLogSink(DiskLogConfig(dir=str(tmp_path / "log")), every_frame_default=True)  # fsync = true
    sink.open()
    sink.handle(make_result(0))
    sink.close()
    assert sink.records == 1 and len(list((tmp_path / "log" / IMAGES).iterdir())) == 2


def test_records_are_compact_json_lines(tmp_path: Path) -> None:
    """No spaces after separators: a tenth less on the card, and one record per line whatever it holds."""
    _log_frames(tmp_path / "log", 1)
    (line,) = (tmp_path / "log" / JSONL).read_bytes().splitlines()
    assert b", " not in line and b'": ' not in line and read_jsonl(tmp_path / "log" / JSONL)[0]["frame"] == 0


def test_partial_lines_are_skipped_with_a_warning_naming_the_file(tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text('{"frame": 1}\n{"fra\n{"frame": 2}\n', encoding="utf-8")
    with caplog.at_level(logging.INFO, logger=LOGGER):
        assert read_jsonl(path) == [{"frame": 1}, {"frame": 2}]
    assert _messages(caplog, logging.WARNING) == [f"{path}: skipping a partial line"]


def test_a_sink_closed_without_being_opened_closes_quietly(tmp_path: Path) -> None:
    sink = DiskLogSink(DiskLogConfig(dir=str(tmp_path / "log")))
    sink.close()
    sink.check()  # a directory that can be created: no complaint
    (tmp_path / "file").write_text("x")
    with pytest.raises(SinkError, match="file"):
        DiskLogSink(DiskLogConfig(dir=str(tmp_path / "file" / "log"))).check()


def test_open_clears_stale_temporaries(tmp_path: Path) -> None:
    log = tmp_path / "log"
    _log_frames(log, 1)
    stale = log / IMAGES / ".tmp-20231114T221320.000Z-00000009-frame.jpg"  # a kill mid-write
    stale.write_bytes(b"\xff\xd8 half")
    _sink(log).close()
    assert not stale.exists()


def test_at_reopen_the_oldest_files_go_first_whether_images_or_rotated_logs(tmp_path: Path) -> None:
    log = tmp_path / "log"
    # A rotated log stamped now, then images stamped in 2033 (frame times ahead of the clock): the log is the oldest.
    _log_frames(log, 3, save_frames=False, save_overlays=False, jsonl_max_mb=0.001)
    (rotated,) = log.glob("predictions-*.jsonl")
    sink = _sink(log)
    for i in range(2):
        sink.handle(make_result(i, t=2_000_000_000.0 + i))
    sink.close()
    sink = _sink(log, max_files=1, save_frames=False, save_overlays=False)
    sink.handle(make_result(5, t=2_000_000_010.0))
    sink.close()
    assert not rotated.exists() and [p.name for p in (log / IMAGES).iterdir()] == [
        "20330518T033321.000Z-00000001-overlay.jpg"]


def test_the_overlay_is_drawn_for_the_record_only_when_it_is_saved(tmp_path: Path) -> None:
    drawn: list[int] = []

    def lazy(i: int) -> Result:
        result = make_result(i)
        image = result.drawn
        result.drawn, result.draw = None, lambda: drawn.append(i) or image  # type: ignore[func-returns-value]
        return result

    sink = _sink(tmp_path / "saved")
    sink.handle(lazy(0))
    sink.close()
    assert drawn == [0] and "render" in read_jsonl(tmp_path / "saved" / JSONL)[0]["latency_ms"]
    sink = _sink(tmp_path / "floor", min_free_mb=1e7)  # overlays wanted, but no room to save them
    sink.handle(lazy(1))
    sink.close()
    assert drawn == [0] and "render" not in read_jsonl(tmp_path / "floor" / JSONL)[0]["latency_ms"]


def test_images_stop_below_the_floor_and_start_again_with_a_message_each_way(
        few_inodes: Path, caplog: pytest.LogCaptureFixture) -> None:
    log = few_inodes / "log"
    filler = few_inodes / "filler"
    filler.write_bytes(b"\0" * 3 * 1024 * 1024)  # of 4 MB: below a 2 MB floor
    with caplog.at_level(logging.INFO, logger=LOGGER):
        sink = _sink(log, min_free_mb=2.0)
        for i in range(2):
            sink.handle(make_result(i))
        filler.unlink()
        for i in range(2, 4):
            sink.handle(make_result(i))
        sink.close()
    assert sink.images_skipped == 2 and len(list((log / IMAGES).iterdir())) == 4
    (warning,) = _messages(caplog, logging.WARNING)
    assert warning == f"{log}: 1 MB free, below min_free_mb 2: not saving images"
    assert _messages(caplog, logging.INFO)[1:] == [f"{log}: 4 MB free again: saving images",
                                                   f"{log}: 4 records, 2 frames without all their images"]


def test_no_inode_left_for_an_image_is_a_full_disk_too(few_inodes: Path, caplog: pytest.LogCaptureFixture) -> None:
    log = few_inodes / "log"
    sink = _sink(log, min_free_mb=0.0)
    with contextlib.suppress(OSError):  # take every inode that is left
        for i in range(100):
            (few_inodes / f"empty-{i}").touch()
    with caplog.at_level(logging.INFO, logger=LOGGER):
        sink.handle(make_result(0))
        sink.close()
    assert sink.records == 1 and sink.image_errors == 2
    assert _messages(caplog, logging.WARNING)[0].endswith("-frame.jpg: disk full: image not saved (1 so far)")


def test_a_read_only_images_folder_is_refused_at_open_with_the_kernels_reason(tmp_path: Path) -> None:
    log = tmp_path / "log"
    _log_frames(log, 1)
    images = str(log / IMAGES)
    bound = subprocess.run(["mount", "--bind", images, images], capture_output=True, text=True, check=False)
    if bound.returncode != 0:
        pytest.skip(f"cannot bind-mount here (needs root): {bound.stderr.strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", images], check=True)
        with pytest.raises(SinkError) as refused:
            _sink(log)
    finally:
        subprocess.run(["umount", "-l", images], check=False)
    assert str(refused.value) == f"[log] dir {log}: not writable (Read-only file system)"
