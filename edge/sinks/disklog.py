"""Headless capture logging: a JSONL record per logged frame plus the frame and its overlay as JPEGs.

Written for an SD card that loses power: JPEGs go to a temporary file and are renamed into place, each JSONL record
is flushed (and fsynced) on its own, so a cut leaves every earlier record readable and at most the last line partial.
Old files are deleted oldest first to stay under a file count and a total size, and past an age ([log] keep_days,
told by the UTC time in their names), and images are no longer saved while free space is below a floor (records still
are).

The quota only ever deletes files this sink wrote: names of its own pattern, in a directory that carries its marker
file (edge.sinks.logdir). Nothing is written or deleted through a symbolic link: the log's files are opened relative
to descriptors of the directory and of images/, with O_NOFOLLOW.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import tempfile
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from edge.jpeg import encode_rgb
from edge.records import Result, SinkError
from edge.safe_io import loads_json
from edge.sinks import logdir
from edge.sinks.logdir import IMAGES, JSONL, OwnFile
from edge.sinks.record import LogPolicy, PolicyConfig, make_record

_LOGGER = logging.getLogger(__name__)

_MB = 1024 * 1024
_DAY_S = 86400.0
_WARN_EVERY = 100  # after the first, every 100th failed record or image is logged


@dataclass(frozen=True)
class DiskLogConfig(PolicyConfig):
    """[log]: where and what to log; also the policy keys every_s, on_change, above, every_frame."""

    dir: str = field(default="", metadata={"doc": "log directory; empty = no disk log"})
    save_frames: bool = field(default=True, metadata={"doc": "save each logged frame as JPEG"})
    save_overlays: bool = field(default=True, metadata={"doc": "save each logged overlay as JPEG"})
    jpeg_quality: int = field(default=85, metadata={"range": (10, 100), "doc": "JPEG quality"})
    max_files: int = field(default=5000, metadata={"range": (0, 10_000_000), "doc": "keep at most N files; 0 = any"})
    max_mb: float = field(default=1024.0, metadata={"range": (0.0, 1e7), "doc": "keep at most N MB; 0 = any"})
    keep_days: float = field(default=0.0, metadata={"range": (0.0, 36500.0), "doc": (
        "delete files older than N days (and rotate the JSONL daily); 0 = any age")})
    min_free_mb: float = field(default=200.0, metadata={"range": (0.0, 1e7), "doc": "stop saving images below"})
    jsonl_max_mb: float = field(default=16.0, metadata={"range": (0.01, 1e5), "doc": "rotate the JSONL beyond"})
    fsync: bool = field(default=True, metadata={"doc": "fsync each record and image (power-cut safety)"})


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """The records of a JSONL log; a partial or corrupt line (a power cut mid-write, an edited file) is skipped."""
    records = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                record = loads_json(line)
            except ValueError:
                record = None
            if isinstance(record, dict):
                records.append(record)
            else:
                _LOGGER.warning("%s: skipping a partial line", path)
    return records


def _stamp(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y%m%dT%H%M%S.%f")[:-3] + "Z"


class DiskLogSink:
    """Writes records and JPEGs under config.dir; run it in a SinkWorker."""

    name = "disklog"

    def __init__(self, config: DiskLogConfig, *, every_frame_default: bool = False,
                 clock: Callable[[], float] = time.time) -> None:
        if not config.dir:
            raise SinkError("[log] dir is empty: give a log directory (--log-dir DIR)")
        self.config = config
        self.dir = Path(config.dir)
        self.policy = LogPolicy(config, every_frame_default=every_frame_default)
        self.records = 0
        self.images_skipped = 0  # frames with a JPEG not saved (free-space floor, disk full, write error)
        self.image_errors = 0  # JPEG writes that failed
        # The JSONL is appended with os.write on an O_APPEND descriptor, not a buffered file: on a full disk a buffered
        # writer keeps the failed bytes and raises again on every later call (even tell()).
        self._fd: int | None = None
        self._dir_fd: int | None = None  # the log directory and its images/, opened once: names resolve in them,
        self._images_fd: int | None = None  # so a link swapped in later is never followed
        self._size = 0  # bytes in the current JSONL
        self._dangling = False  # the file ends in a partial line (power cut, ENOSPC): the next record starts a new one
        self.records_failed = 0
        self._old: deque[OwnFile] = deque()  # the log's own closed files, oldest first
        self._old_bytes = 0
        self._low_space = False
        self._clock = clock  # wall time, for keep_days and rotated names (a fake one in tests)
        self._opened_at = 0.0  # wall time the current JSONL was opened

    def check(self) -> None:
        """What open() would refuse, found without creating or writing anything (for --check-config)."""
        logdir.check_creatable(self.dir)

    def open(self) -> None:
        self._dir_fd, self._images_fd = logdir.claim(self.dir)
        try:
            with tempfile.NamedTemporaryFile(dir=self.dir / IMAGES, prefix=".probe-"):
                pass
        except OSError as e:
            self.close()
            raise SinkError(f"[log] dir {self.dir}: not writable ({e.strerror or e})") from e
        logdir.remove_stale_temps(self._images_fd)
        for own in sorted(logdir.own_files(self._dir_fd, self._images_fd), key=_age_key):
            self._remember(own)
        self._expire()
        try:
            self._open_jsonl()
        except OSError as e:
            self.close()
            raise SinkError(f"[log] dir {self.dir}: cannot open {JSONL} ({e.strerror or e})") from e
        _LOGGER.info("logging to %s", self.dir)

    def _remember(self, own: OwnFile) -> None:
        self._old.append(own)
        self._old_bytes += own.size

    def _open_jsonl(self) -> None:
        # Read-write only so that the last byte can be read back through the same descriptor.
        self._fd = os.open(JSONL, os.O_RDWR | os.O_APPEND | os.O_CREAT | logdir.FILE_FLAGS, 0o644,
                           dir_fd=self._dir_fd)
        self._size = os.fstat(self._fd).st_size
        self._opened_at = self._clock()
        # After a power cut the last line may be partial: start on a fresh line so the next record stays readable.
        self._dangling = self._size > 0 and os.pread(self._fd, 1, self._size - 1) != b"\n"

    def handle(self, result: Result) -> None:
        for event in (result.drift or {}).get("events", ()):  # drift alerts and clearings: lines of their own
            self._write_record({"time": make_record(result)["time"], "source": result.source,
                                "frame": result.frame.index, "drift_event": event["event"], "drift": event})
        if not self.policy.should_log(result):
            return
        wanted = {"frame_jpeg": self.config.save_frames, "overlay_jpeg": self.config.save_overlays}
        saving = any(wanted.values()) and self._space_ok()
        if saving and self.config.save_overlays:
            _ = result.overlay  # drawn before the record is made, so that it carries the render time
        record = make_record(result)
        stem = f"{_stamp(result.frame.timestamp)}-{result.frame.index:08d}"
        if saving:
            if self.config.save_frames:
                record["frame_jpeg"] = self._save_jpeg(f"{stem}-frame.jpg", result.frame.image)
            if self.config.save_overlays:
                record["overlay_jpeg"] = self._save_jpeg(f"{stem}-overlay.jpg", result.overlay)
        if any(record.get(key) is None for key, want in wanted.items() if want):
            self.images_skipped += 1  # counted per frame, however many of its JPEGs are missing
        self._write_record(record)
        self._rotate()

    def _space_ok(self) -> bool:
        assert self._dir_fd is not None
        fs = os.fstatvfs(self._dir_fd)
        free_mb = fs.f_bavail * fs.f_frsize / _MB
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
        assert self._images_fd is not None
        data = encode_rgb(image, self.config.jpeg_quality)
        if data is None:
            self._image_failed(name, "OpenCV could not encode it")
            return None
        tmp = f".tmp-{name}"  # only complete files ever carry the final name: a cut leaves a temporary file
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | logdir.FILE_FLAGS, 0o644, dir_fd=self._images_fd)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                if self.config.fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, name, src_dir_fd=self._images_fd, dst_dir_fd=self._images_fd)
        except OSError as e:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=self._images_fd)
            self._image_failed(name, "disk full" if e.errno == errno.ENOSPC else str(e.strerror or e))
            return None
        self._remember(OwnFile(self._images_fd, name, len(data)))
        return f"{IMAGES}/{name}"

    def _image_failed(self, name: str, why: str) -> None:
        # Throttled like the JSONL's errors: a full disk at 30 fps must not write 60 lines a second to the journal.
        self.image_errors += 1
        if self.image_errors == 1 or self.image_errors % _WARN_EVERY == 0:
            _LOGGER.warning("%s: %s: image not saved (%d so far)", self.dir / IMAGES / name, why, self.image_errors)

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
            if self.records_failed == 1 or self.records_failed % _WARN_EVERY == 0:
                _LOGGER.error("%s: record for frame %s not written (%d so far): %s", self.dir / JSONL,
                              record["frame"], self.records_failed, e.strerror or e)
        self._size += written

    def _rotate(self) -> None:
        assert self._fd is not None and self._dir_fd is not None
        daily = self.config.keep_days > 0 and self._size and self._clock() - self._opened_at > _DAY_S
        if self._size > self.config.jsonl_max_mb * _MB or daily:
            os.close(self._fd)
            rotated = f"predictions-{_stamp(self._clock())}.jsonl"
            os.replace(JSONL, rotated, src_dir_fd=self._dir_fd, dst_dir_fd=self._dir_fd)
            self._remember(OwnFile(self._dir_fd, rotated, self._size))
            self._open_jsonl()
        # Only closed files of the log's own are in _old, so the file being written (or anyone's) is never deleted.
        while self._old and self._over_budget():
            self._delete_oldest()
        self._expire()

    def _delete_oldest(self) -> None:
        own = self._old.popleft()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(own.name, dir_fd=own.dir_fd)
        self._old_bytes -= own.size

    def _expire(self) -> None:
        """Delete the log's own closed files whose name's UTC time is more than keep_days ago, oldest first."""
        if self.config.keep_days <= 0:
            return
        cutoff = _stamp(self._clock() - self.config.keep_days * _DAY_S)
        while self._old and _age_key(self._old[0]) < cutoff:  # stamps of one format order as strings do
            self._delete_oldest()

    def _over_budget(self) -> bool:
        current = self._size if self._fd is not None else 0
        too_many = self.config.max_files > 0 and len(self._old) > self.config.max_files
        too_big = self.config.max_mb > 0 and self._old_bytes + current > self.config.max_mb * _MB
        return too_many or too_big

    def usage(self) -> tuple[int, int]:
        """(files, bytes) the log keeps now: its closed files and the current JSONL (read by /metrics' thread)."""
        return len(self._old) + (self._fd is not None), self._old_bytes + self._size

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            _LOGGER.info("%s: %d records, %d frames without all their images", self.dir, self.records,
                         self.images_skipped)
        for fd in (self._images_fd, self._dir_fd):
            if fd is not None:
                os.close(fd)
        self._images_fd = self._dir_fd = None


def _age_key(own: OwnFile) -> str:
    """Names start with a UTC stamp (rotated JSONLs after 'predictions-'), so the stamp orders files by age."""
    return own.name.removeprefix("predictions-")
