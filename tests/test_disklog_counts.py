"""Disk log, what a user reads back: its counters and messages in a normal run, below the free-space floor and on a
real full disk, and its one-line refusals (the files it writes and the quota's boundaries:
tests/test_disklog_names_modes_quota.py). In-process, so that mutation testing selects these tests."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from disklog_support import LOGGER, log_frames, logged, open_sink
from test_disklog import make_result

from edge.records import Result, SinkError
from edge.sinks import DiskLogConfig, DiskLogSink, read_jsonl
from edge.sinks.logdir import IMAGES, JSONL


def test_counters_and_the_messages_of_a_normal_run(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    log = tmp_path / "log"
    with caplog.at_level(logging.INFO, logger=LOGGER):
        sink = open_sink(log, min_free_mb=0.0)
        for i in range(3):
            sink.handle(make_result(i))
        sink.close()
    assert (sink.records, sink.records_failed, sink.images_skipped, sink.image_errors) == (3, 0, 0, 0)
    summary = f"{log}: 3 records, 0 frames without all their images"
    assert logged(caplog, logging.INFO) == [f"logging to {log}", summary]
    assert not logged(caplog, logging.WARNING) and not logged(caplog, logging.ERROR)
    sink.close()  # a second close is harmless and says nothing more
    assert len(logged(caplog, logging.INFO)) == 2


def test_below_the_free_space_floor_every_frame_counts_and_the_warning_comes_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    log = tmp_path / "log"
    with caplog.at_level(logging.INFO, logger=LOGGER):
        sink = open_sink(log, min_free_mb=1e7)
        for i in range(3):
            sink.handle(make_result(i))
        sink.close()
    assert sink.records == 3 and sink.images_skipped == 3 and sink.image_errors == 0
    (warning,) = logged(caplog, logging.WARNING)
    assert warning.startswith(f"{log}: ")
    assert warning.endswith(" MB free, below min_free_mb 10000000: not saving images")
    assert logged(caplog, logging.INFO)[-1] == f"{log}: 3 records, 3 frames without all their images"


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
        sink = open_sink(log, save_overlays=False, min_free_mb=0.0, max_files=0, max_mb=0.0)
        for i in range(frames):
            sink.handle(_noisy(i))
        filler.unlink()
        for i in range(frames, frames + 2):
            sink.handle(make_result(i))
        sink.close()
    assert sink.image_errors > 100 and sink.records_failed > 100
    assert sink.records + sink.records_failed == frames + 2
    warnings = logged(caplog, logging.WARNING)
    assert len(warnings) == 1 + sink.image_errors // 100
    assert warnings[0].startswith(f"{log}/{IMAGES}/") and warnings[0].endswith(
        "-frame.jpg: disk full: image not saved (1 so far)") and warnings[1].endswith("(100 so far)")
    errors = logged(caplog, logging.ERROR)
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
        sink = open_sink(tmp_path / "log")
        sink.handle(result)
        sink.close()
    stem = "20231114T221320.000Z-00000000"
    assert logged(caplog, logging.WARNING) == [
        f"{tmp_path}/log/{IMAGES}/{stem}-frame.jpg: OpenCV could not encode it: image not saved (1 so far)"]
    assert sink.images_skipped == 1 and sink.image_errors == 1


def test_an_image_write_error_other_than_a_full_disk_is_named_as_the_kernel_names_it(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    log = tmp_path / "log"
    sink = open_sink(log)
    stem = "20231114T221320.000Z-00000000"
    (log / IMAGES / f".tmp-{stem}-frame.jpg").symlink_to(tmp_path / "elsewhere")  # O_NOFOLLOW: ELOOP
    with caplog.at_level(logging.INFO, logger=LOGGER):
        sink.handle(make_result(0))
        sink.close()
    assert logged(caplog, logging.WARNING) == [
        f"{log}/{IMAGES}/{stem}-frame.jpg: Too many levels of symbolic links: image not saved (1 so far)"]


def test_with_fsync_every_record_and_image_is_written_as_without(tmp_path: Path) -> None:
    sink = DiskLogSink(DiskLogConfig(dir=str(tmp_path / "log")), every_frame_default=True)  # fsync = true
    sink.open()
    sink.handle(make_result(0))
    sink.close()
    assert sink.records == 1 and len(list((tmp_path / "log" / IMAGES).iterdir())) == 2


def test_the_overlay_is_drawn_for_the_record_only_when_it_is_saved(tmp_path: Path) -> None:
    drawn: list[int] = []

    def lazy(i: int) -> Result:
        result = make_result(i)
        image = result.drawn
        result.drawn, result.draw = None, lambda: drawn.append(i) or image  # type: ignore[func-returns-value]
        return result

    sink = open_sink(tmp_path / "saved")
    sink.handle(lazy(0))
    sink.close()
    assert drawn == [0] and "render" in read_jsonl(tmp_path / "saved" / JSONL)[0]["latency_ms"]
    sink = open_sink(tmp_path / "floor", min_free_mb=1e7)  # overlays wanted, but no room to save them
    sink.handle(lazy(1))
    sink.close()
    assert drawn == [0] and "render" not in read_jsonl(tmp_path / "floor" / JSONL)[0]["latency_ms"]


def test_images_stop_below_the_floor_and_start_again_with_a_message_each_way(
        few_inodes: Path, caplog: pytest.LogCaptureFixture) -> None:
    log = few_inodes / "log"
    filler = few_inodes / "filler"
    filler.write_bytes(b"\0" * 3 * 1024 * 1024)  # of 4 MB: below a 2 MB floor
    with caplog.at_level(logging.INFO, logger=LOGGER):
        sink = open_sink(log, min_free_mb=2.0)
        for i in range(2):
            sink.handle(make_result(i))
        filler.unlink()
        for i in range(2, 4):
            sink.handle(make_result(i))
        sink.close()
    assert sink.images_skipped == 2 and len(list((log / IMAGES).iterdir())) == 4
    (warning,) = logged(caplog, logging.WARNING)
    assert warning == f"{log}: 1 MB free, below min_free_mb 2: not saving images"
    assert logged(caplog, logging.INFO)[1:] == [f"{log}: 4 MB free again: saving images",
                                                   f"{log}: 4 records, 2 frames without all their images"]


def test_no_inode_left_for_an_image_is_a_full_disk_too(few_inodes: Path, caplog: pytest.LogCaptureFixture) -> None:
    log = few_inodes / "log"
    sink = open_sink(log, min_free_mb=0.0)
    with contextlib.suppress(OSError):  # take every inode that is left
        for i in range(100):
            (few_inodes / f"empty-{i}").touch()
    with caplog.at_level(logging.INFO, logger=LOGGER):
        sink.handle(make_result(0))
        sink.close()
    assert sink.records == 1 and sink.image_errors == 2
    assert logged(caplog, logging.WARNING)[0].endswith("-frame.jpg: disk full: image not saved (1 so far)")


def test_a_read_only_images_folder_is_refused_at_open_with_the_kernels_reason(tmp_path: Path) -> None:
    log = tmp_path / "log"
    log_frames(log, 1)
    images = str(log / IMAGES)
    bound = subprocess.run(["mount", "--bind", images, images], capture_output=True, text=True, check=False)
    if bound.returncode != 0:
        pytest.skip(f"cannot bind-mount here (needs root): {bound.stderr.strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", images], check=True)
        with pytest.raises(SinkError) as refused:
            open_sink(log)
    finally:
        subprocess.run(["umount", "-l", images], check=False)
    assert str(refused.value) == f"[log] dir {log}: not writable (Read-only file system)"

