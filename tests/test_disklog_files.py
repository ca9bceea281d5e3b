"""Disk log: the quota deletes only the log's own files, never follows a link, and counts and throttles its failures."""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import multiprocessing.connection
import os
import resource
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_disklog import make_result

from edge.records import SinkError
from edge.sinks import DiskLogConfig, DiskLogSink, read_jsonl
from edge.sinks.logdir import IMAGES, JSONL, MARKER


def _photos(folder: Path, count: int = 3) -> dict[Path, bytes]:
    """Someone's photos (real JPEGs, named as cameras name them), by path, with their bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    photos = {}
    for i in range(count):
        ok, data = cv2.imencode(".jpg", np.full((32, 32, 3), 50 * i, np.uint8))
        assert ok
        path = folder / f"IMG_{i:04d}.jpg"
        path.write_bytes(data.tobytes())
        photos[path] = data.tobytes()
    return photos


def _log(directory: Path, frames: int, **kw: object) -> DiskLogSink:
    config = DiskLogConfig(dir=str(directory), fsync=False, **kw)  # type: ignore[arg-type]
    sink = DiskLogSink(config, every_frame_default=True)
    sink.open()
    try:
        for i in range(frames):
            sink.handle(make_result(i))
    finally:
        sink.close()
    return sink


def _intact(photos: dict[Path, bytes]) -> bool:
    return all(path.is_file() and path.read_bytes() == data for path, data in photos.items())


def test_photos_beside_the_log_survive_the_quota(tmp_path: Path) -> None:
    log = tmp_path / "Pictures"
    photos = _photos(log)
    old = log / "predictions-2020.jsonl"  # someone's file, though it looks like a rotated log
    old.write_text('{"not": "ours"}\n')
    photos[old] = old.read_bytes()
    _log(log, 10, max_files=2)
    assert _intact(photos)
    assert len(list((log / IMAGES).iterdir())) == 2  # the quota still holds for the log's own files
    assert (log / MARKER).is_file()


def test_an_images_folder_of_someone_elses_photos_is_refused_and_kept(tmp_path: Path) -> None:
    photos = _photos(tmp_path / "log" / IMAGES)
    with pytest.raises(SinkError, match=r"images holds files edge-explainer did not write \(e.g. 'IMG_0000.jpg', 3"):
        _log(tmp_path / "log", 10, max_files=1, max_mb=0.001)
    assert _intact(photos)
    assert not (tmp_path / "log" / JSONL).exists()  # refused before writing anything


def test_photos_dropped_into_the_log_later_are_kept_and_not_counted(tmp_path: Path) -> None:
    log = tmp_path / "log"
    _log(log, 3)
    photos = _photos(log / IMAGES)  # the owner copies photos into the log's own folder afterwards
    sink = _log(log, 6, max_files=2)
    assert _intact(photos)
    own = [p for p in (log / IMAGES).iterdir() if p not in photos]
    assert len(own) == 2 and len(sink._old) == 2


def test_a_log_from_before_the_marker_is_adopted(tmp_path: Path) -> None:
    log = tmp_path / "log"
    _log(log, 3)
    (log / MARKER).unlink()  # as an older version left it: only its own names
    _log(log, 3, max_files=2)
    assert len(list((log / IMAGES).iterdir())) == 2 and (log / MARKER).is_file()


def test_a_linked_images_folder_is_refused_and_its_target_kept(tmp_path: Path) -> None:
    photos = _photos(tmp_path / "holiday")
    (tmp_path / "log").mkdir()
    (tmp_path / "log" / IMAGES).symlink_to(tmp_path / "holiday")
    (tmp_path / "log" / MARKER).write_text("even with the marker")
    with pytest.raises(SinkError, match=r"images is a symbolic link") as info:
        _log(tmp_path / "log", 10, max_files=1)
    assert "\n" not in str(info.value)
    assert _intact(photos) and sorted(os.listdir(tmp_path / "holiday")) == sorted(p.name for p in photos)


def test_a_linked_jsonl_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    target = tmp_path / "precious.txt"
    target.write_text("keep me\n")
    (tmp_path / "log").mkdir()
    (tmp_path / "log" / JSONL).symlink_to(target)
    with pytest.raises(SinkError, match=r"predictions.jsonl is a symbolic link"):
        _log(tmp_path / "log", 2)
    assert target.read_text() == "keep me\n"


def test_a_link_in_the_images_folder_is_neither_followed_nor_deleted(tmp_path: Path) -> None:
    log = tmp_path / "log"
    _log(log, 2)
    photos = _photos(tmp_path / "elsewhere", 1)
    (photo,) = photos
    link = log / IMAGES / "20200101T000000.000Z-00000000-frame.jpg"  # the log's own pattern, but a link
    link.symlink_to(photo)
    _log(log, 6, max_files=1)
    assert _intact(photos) and link.is_symlink()


FILE_LIMIT = 8192  # bytes: the JPEGs below (~15 KB) cannot be written, the JSONL records (< 1 KB each, rotated) can


def _log_with_failing_images(log_dir: Path, results: multiprocessing.connection.Connection) -> None:
    """In a forked child: RLIMIT_FSIZE of 8 KiB, so every JPEG write fails with EFBIG from the kernel (Python ignores
    SIGXFSZ). In the child only: in pytest's own process the limit would also fail its writes to a log file."""
    _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_LIMIT, hard))
    messages: list[tuple[int, str]] = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append((record.levelno, record.getMessage()))  # type: ignore[method-assign]
    logger = logging.getLogger("edge.sinks.disklog")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    noise = np.random.default_rng(0).integers(0, 256, (120, 160, 3), np.uint8)  # JPEGs of ~15 KB: over the limit
    sink = DiskLogSink(DiskLogConfig(dir=str(log_dir), fsync=False, jsonl_max_mb=0.005), every_frame_default=True)
    sink.open()
    for i in range(60):
        result = make_result(i)
        result.frame = dataclasses.replace(result.frame, image=noise)
        result.drawn = noise
        sink.handle(result)
    sink.close()
    results.send({"images_skipped": sink.images_skipped, "image_errors": sink.image_errors, "messages": messages})


def test_failed_images_count_frames_and_warn_throttled(tmp_path: Path) -> None:
    receive, send = multiprocessing.Pipe(duplex=False)
    child = multiprocessing.get_context("fork").Process(target=_log_with_failing_images, args=(tmp_path / "log", send))
    child.start()
    assert receive.poll(120), "the disk log child did not report"
    report = receive.recv()
    child.join(30)
    assert child.exitcode == 0
    records = [r for p in (tmp_path / "log").glob("predictions*.jsonl") for r in read_jsonl(p)]
    assert len(records) == 60 and all(r["frame_jpeg"] is None and r["overlay_jpeg"] is None for r in records)
    assert report["images_skipped"] == 60 and report["image_errors"] == 120  # frames, not images
    warnings = [text for level, text in report["messages"] if level == logging.WARNING]
    assert len(warnings) == 2 and "(1 so far)" in warnings[0] and "(100 so far)" in warnings[1]
    assert any("60 frames without all their images" in text for _, text in report["messages"])
    assert not [p for p in (tmp_path / "log" / IMAGES).iterdir()]  # no temporary file left behind


def test_a_link_planted_as_a_temporary_jpeg_is_not_written_through(tmp_path: Path) -> None:
    target = tmp_path / "precious.txt"
    target.write_text("keep me\n")
    sink = DiskLogSink(DiskLogConfig(dir=str(tmp_path / "log"), fsync=False), every_frame_default=True)
    sink.open()
    result = make_result(0)
    stem = "20231114T221320.000Z-00000000"  # the name the log gives frame 0 of make_result
    (tmp_path / "log" / IMAGES / f".tmp-{stem}-frame.jpg").symlink_to(target)  # after open(), which clears temps
    sink.handle(result)
    sink.close()
    assert target.read_text() == "keep me\n"
    record = read_jsonl(tmp_path / "log" / JSONL)[0]
    assert record["frame_jpeg"] is None and record["overlay_jpeg"] == f"{IMAGES}/{stem}-overlay.jpg"
    assert sink.images_skipped == 1
