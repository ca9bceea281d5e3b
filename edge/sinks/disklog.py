"""Headless capture logging: a JSONL record per logged frame plus the frame and its overlay as JPEGs.

Written for an SD card that loses power: JPEGs go to a temporary file and are renamed into place, each JSONL record
is flushed (and fsynced) on its own, so a cut leaves every earlier record readable and at most the last line partial.
Old files are deleted oldest first to stay under a file count and a total size, and images are no longer saved
while free space is below a floor (records still are).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import tempfile
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from edge.jpeg import encode_rgb
from edge.sinks.base import Result, SinkError
from edge.sinks.record import LogPolicy, PolicyConfig, make_record

_LOGGER = logging.getLogger(__name__)

JSONL = "predictions.jsonl"
IMAGES = "images"
_MB = 1024 * 1024


@dataclass(frozen=True)
class DiskLogConfig(PolicyConfig):
    """[log]: where and what to log; also the policy keys every_s, on_change, above, every_frame."""

    dir: str = field(default="", metadata={"doc": "log directory; empty = no disk log"})
    save_frames: bool = field(default=True, metadata={"doc": "save each logged frame as JPEG"})
    save_overlays: bool = field(default=True, metadata={"doc": "save each logged overlay as JPEG"})
    jpeg_quality: int = field(default=85, metadata={"range": (10, 100), "doc": "JPEG quality"})
    max_files: int = field(default=5000, metadata={"range": (0, 10_000_000), "doc": "keep at most N files; 0 = any"})
    max_mb: float = field(default=1024.0, metadata={"range": (0.0, 1e7), "doc": "keep at most N MB; 0 = any"})
    min_free_mb: float = field(default=200.0, metadata={"range": (0.0, 1e7), "doc": "stop saving images below"})
    jsonl_max_mb: float = field(default=16.0, metadata={"range": (0.01, 1e5), "doc": "rotate the JSONL beyond"})
    fsync: bool = field(default=True, metadata={"doc": "fsync each record and image (power-cut safety)"})


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """The records of a JSONL log; a partial or corrupt line (a power cut mid-write) is skipped."""
    records = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                _LOGGER.warning("%s: skipping a partial line", path)
    return records


def _stamp(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y%m%dT%H%M%S.%f")[:-3] + "Z"


class DiskLogSink:
    """Writes records and JPEGs under config.dir; run it in a SinkWorker."""

    name = "disklog"

    def __init__(self, config: DiskLogConfig, *, every_frame_default: bool = False) -> None:
        if not config.dir:
            raise SinkError("[log] dir is empty: give a log directory (--log-dir DIR)")
        self.config = config
        self.dir = Path(config.dir)
        self.policy = LogPolicy(config, every_frame_default=every_frame_default)
        self.records = 0
        self.images_skipped = 0  # frames whose JPEGs were not saved (free-space floor, disk full, write error)
        # The JSONL is appended with os.write on an O_APPEND descriptor, not a buffered file: on a full disk a buffered
        # writer keeps the failed bytes and raises again on every later call (even tell()).
        self._fd: int | None = None
        self._size = 0  # bytes in the current JSONL
        self._dangling = False  # the file ends in a partial line (power cut, ENOSPC): the next record starts a new one
        self.records_failed = 0
        self._old: deque[tuple[Path, int]] = deque()  # rotatable files, oldest first, with their sizes
        self._old_bytes = 0
        self._low_space = False

    def open(self) -> None:
        try:
            (self.dir / IMAGES).mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.dir, prefix=".probe-"):
                pass
        except OSError as e:
            raise SinkError(f"[log] dir {self.dir}: not writable ({e.strerror or e})") from e
        for stale in (self.dir / IMAGES).glob(".tmp-*"):
            stale.unlink(missing_ok=True)
        self._scan()
        self._open_jsonl()
        _LOGGER.info("logging to %s", self.dir)

    def _scan(self) -> None:
        files = sorted((self.dir / IMAGES).glob("*.jpg")) + sorted(self.dir.glob("predictions-*.jsonl"))
        files.sort(key=lambda p: p.name)  # names start with a UTC stamp
        for path in files:
            self._remember(path)

    def _remember(self, path: Path) -> None:
        size = path.stat().st_size
        self._old.append((path, size))
        self._old_bytes += size

    def _open_jsonl(self) -> None:
        path = self.dir / JSONL
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._size = os.fstat(self._fd).st_size
        self._dangling = False
        # After a power cut the last line may be partial: start on a fresh line so the next record stays readable.
        if self._size > 0:
            with open(path, "rb") as f:
                f.seek(-1, os.SEEK_END)
                self._dangling = f.read(1) != b"\n"

    def handle(self, result: Result) -> None:
        if not self.policy.should_log(result):
            return
        saving = (self.config.save_frames or self.config.save_overlays) and self._space_ok()
        if saving and self.config.save_overlays:
            _ = result.overlay  # drawn before the record is made, so that it carries the render time
        record = make_record(result)
        stem = f"{_stamp(result.frame.timestamp)}-{result.frame.index:08d}"
        if saving:
            if self.config.save_frames:
                record["frame_jpeg"] = self._save_jpeg(f"{stem}-frame.jpg", result.frame.image)
            if self.config.save_overlays:
                record["overlay_jpeg"] = self._save_jpeg(f"{stem}-overlay.jpg", result.overlay)
        elif self.config.save_frames or self.config.save_overlays:
            self.images_skipped += 1
        self._write_record(record)
        self._rotate()

    def _space_ok(self) -> bool:
        free_mb = shutil.disk_usage(self.dir).free / _MB
        low = free_mb < self.config.min_free_mb
        if low != self._low_space:
            if low:
                _LOGGER.warning("%s: %.0f MB free, below min_free_mb %.0f: not saving images",
                                self.dir, free_mb, self.config.min_free_mb)
            else:
                _LOGGER.info("%s: %.0f MB free again: saving images", self.dir, free_mb)
            self._low_space = low
        return not low

    def _save_jpeg(self, name: str, image: NDArray[np.uint8]) -> str | None:
        """Write (H, W, 3) uint8 RGB atomically as images/name; returns the relative path, or None if not saved."""
        data = encode_rgb(image, self.config.jpeg_quality)
        if data is None:
            self.images_skipped += 1
            return None
        target = self.dir / IMAGES / name
        tmp = target.with_name(f".tmp-{name}")
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                if self.config.fsync:
                    os.fsync(f.fileno())
            os.replace(tmp, target)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            self.images_skipped += 1
            if e.errno == errno.ENOSPC:
                _LOGGER.warning("%s: disk full, image not saved (%d skipped)", target, self.images_skipped)
            else:
                _LOGGER.warning("%s: not saved: %s", target, e)
            return None
        self._remember(target)
        return f"{IMAGES}/{name}"

    def _write_record(self, record: dict[str, Any]) -> None:
        assert self._fd is not None
        data = (b"\n" if self._dangling else b"") + (json.dumps(record, separators=(",", ":")) + "\n").encode()
        written = 0
        try:
            while written < len(data):
                written += os.write(self._fd, data[written:])
            if self.config.fsync:
                os.fsync(self._fd)
            self.records += 1
            self._dangling = False
        except OSError as e:
            if written:
                self._dangling = not data[:written].endswith(b"\n")
            self.records_failed += 1
            if self.records_failed == 1 or self.records_failed % 100 == 0:
                _LOGGER.error("%s: record for frame %s not written (%d so far): %s", self.dir / JSONL,
                              record["frame"], self.records_failed, e.strerror or e)
        self._size += written

    def _rotate(self) -> None:
        assert self._fd is not None
        if self._size > self.config.jsonl_max_mb * _MB:
            os.close(self._fd)
            rotated = self.dir / f"predictions-{_stamp(datetime.now(UTC).timestamp())}.jsonl"
            os.replace(self.dir / JSONL, rotated)
            self._remember(rotated)
            self._open_jsonl()
        # Only closed files are in _old, so the file being written is never deleted.
        while self._old and self._over_budget():
            path, size = self._old.popleft()
            path.unlink(missing_ok=True)
            self._old_bytes -= size

    def _over_budget(self) -> bool:
        current = self._size if self._fd is not None else 0
        too_many = self.config.max_files > 0 and len(self._old) > self.config.max_files
        too_big = self.config.max_mb > 0 and self._old_bytes + current > self.config.max_mb * _MB
        return too_many or too_big

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            _LOGGER.info("%s: %d records, %d frames without images", self.dir, self.records, self.images_skipped)
