"""The dashboard's recent events after a restart: the last frames the disk log kept, read back from --log-dir.

The in-memory ring starts empty in every process, so without this a restarted service (a reboot, an update) showed
no events until the log policy kept new ones. The disk log already holds the same frames (same policy keys), so the
ring is filled from its newest records whose JPEGs are still there. Only the log's own names are read (a record
naming anything else is skipped), only regular files are opened (links are not followed, a FIFO does not block), only
the tail of each JSONL file is read, overlong or malformed lines are skipped, and the files and bytes read in all are
capped, so neither a large nor a crafted log holds up the start.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edge.safe_io import loads_json
from edge.sinks.logdir import FILE_FLAGS, IMAGE_NAME, IMAGES, JSONL, ROTATED_NAME

_LOGGER = logging.getLogger(__name__)

CHUNK = 64 * 1024  # bytes read at a time from the end of a JSONL file
MAX_TAIL = 4 * 1024 * 1024  # at most this much of each JSONL file is read (a few thousand records)
MAX_LINE = 256 * 1024  # a longer line is not a record the log wrote (1,000 class names take ~40 KB): skipped
MAX_FILES = 8  # JSONL files looked at, newest first
MAX_SCANNED = 16 * 1024 * 1024  # bytes read in all (JSONL and JPEGs): the start is never held up by the log's size
MAX_JPEG = 4 * 1024 * 1024  # a larger "JPEG" is not something the log wrote
OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | FILE_FLAGS  # a FIFO named like a log file must not block the start

LoggedEvent = tuple[dict[str, Any], bytes, bytes]  # record, frame JPEG (b"" if not saved), overlay JPEG


class _Budget:
    """Bytes still allowed to be read in this read-back."""

    def __init__(self, total: int) -> None:
        self.left = total

    def take(self, size: int) -> bool:
        if size > self.left:
            self.left = 0
            return False
        self.left -= size
        return True


def _open_regular(path: Path) -> tuple[int, int] | None:
    """(descriptor, size) of path if it is a regular file (not a link, FIFO or device), else None."""
    try:
        fd = os.open(path, OPEN_FLAGS)
    except OSError:  # deleted by the quota since, or a link
        return None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        return None
    return fd, info.st_size


def _lines_from_end(path: Path, budget: _Budget) -> Iterator[bytes]:
    """The file's complete lines of at most MAX_LINE bytes, last first, from at most MAX_TAIL bytes of its end."""
    opened = _open_regular(path)
    if opened is None:
        return
    fd, end = opened
    try:
        start = max(0, end - MAX_TAIL)
        rest, overlong = b"", False
        while end > start and budget.take(min(CHUNK, end - start)):
            size = min(CHUNK, end - start)
            end -= size
            rest = os.pread(fd, size, end) + rest
            *lines, = rest.split(b"\n")
            rest = lines[0]  # possibly cut at the chunk's start: completed by the next read
            for line in reversed(lines[1:]):
                if not overlong and len(line) <= MAX_LINE:
                    yield line
                overlong = False
            if len(rest) > MAX_LINE:  # its start is further back: skip the whole line
                rest, overlong = b"", True
        if start == 0 and end == 0 and not overlong:
            yield rest  # the first line of the file is whole
    finally:
        os.close(fd)


def _read_jpeg(log_dir: Path, relative: object, budget: _Budget) -> bytes | None:
    """The bytes of images/<name> if the record names one of the log's own JPEGs and it is still there."""
    if not isinstance(relative, str):
        return None
    folder, _, name = relative.partition("/")
    if folder != IMAGES or not IMAGE_NAME.fullmatch(name):
        return None
    opened = _open_regular(log_dir / IMAGES / name)
    if opened is None:
        return None
    fd, size = opened
    try:
        return os.pread(fd, size, 0) if 0 < size <= MAX_JPEG and budget.take(size) else None
    finally:
        os.close(fd)


def _jsonl_files(log_dir: Path) -> list[Path]:
    """The current log, then the rotated ones, newest first (their names sort by their UTC stamp)."""
    rotated = sorted((p for p in log_dir.glob("predictions-*.jsonl") if ROTATED_NAME.fullmatch(p.name)), reverse=True)
    return [log_dir / JSONL, *rotated][:MAX_FILES]


def _record(line: bytes) -> dict[str, Any] | None:
    """The line's JSON object, or None for anything else (blank, cut by a power failure, nested too deeply)."""
    try:
        record = loads_json(line)
    except (ValueError, UnicodeDecodeError):
        return None
    return record if isinstance(record, dict) else None


def last_logged_events(log_dir: Path, count: int) -> list[LoggedEvent]:
    """Up to count of the newest logged frames that still have their overlay JPEG, oldest first."""
    found: list[LoggedEvent] = []
    budget = _Budget(MAX_SCANNED)
    for path in _jsonl_files(log_dir):
        for line in _lines_from_end(path, budget):
            record = _record(line)
            overlay = _read_jpeg(log_dir, record.get("overlay_jpeg"), budget) if record else None
            if record is None or overlay is None:
                continue
            found.append((record, _read_jpeg(log_dir, record.get("frame_jpeg"), budget) or b"", overlay))
            if len(found) >= count:
                return found[::-1]
    return found[::-1]


def seed_events(log_dir: str, count: int) -> list[LoggedEvent]:
    """last_logged_events, with any failure to read the log a one-line warning (the dashboard then starts empty)."""
    if not log_dir or count <= 0 or not Path(log_dir).is_dir():
        return []
    try:
        return last_logged_events(Path(log_dir), count)
    except OSError as e:
        _LOGGER.warning("%s: recent events not read back from the log: %s", log_dir, e.strerror or e)
        return []
