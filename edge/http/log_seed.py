"""The dashboard's recent events after a restart: the last frames the disk log kept, read back from --log-dir.

The in-memory ring starts empty in every process, so without this a restarted service (a reboot, an update) showed
no events until the log policy kept new ones. The disk log already holds the same frames (same policy keys), so the
ring is filled from its newest records whose JPEGs are still there. Only the log's own names are read (a record
naming anything else is skipped), links are not followed, and only the tail of each JSONL file is read, so a large log
costs the start-up no more than a few hundred kilobytes.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edge.sinks.logdir import FILE_FLAGS, IMAGE_NAME, IMAGES, JSONL, ROTATED_NAME

_LOGGER = logging.getLogger(__name__)

CHUNK = 64 * 1024  # bytes read at a time from the end of a JSONL file
MAX_TAIL = 4 * 1024 * 1024  # at most this much of each JSONL file is read (a few thousand records)
MAX_JPEG = 16 * 1024 * 1024  # a larger "JPEG" is not something the log wrote

LoggedEvent = tuple[dict[str, Any], bytes, bytes]  # record, frame JPEG (b"" if not saved), overlay JPEG


def _lines_from_end(path: Path) -> Iterator[bytes]:
    """The file's complete lines, last first, from at most MAX_TAIL bytes of its end."""
    fd = os.open(path, os.O_RDONLY | FILE_FLAGS)
    try:
        end = os.fstat(fd).st_size
        start = max(0, end - MAX_TAIL)
        rest = b""
        while end > start:
            size = min(CHUNK, end - start)
            end -= size
            rest = os.pread(fd, size, end) + rest
            *lines, = rest.split(b"\n")
            rest = lines[0]  # possibly cut at the chunk's start: completed by the next read
            yield from reversed(lines[1:])
        if start == 0:
            yield rest  # the first line of the file is whole
    finally:
        os.close(fd)


def _read_jpeg(log_dir: Path, relative: object) -> bytes | None:
    """The bytes of images/<name> if the record names one of the log's own JPEGs and it is still there."""
    if not isinstance(relative, str):
        return None
    folder, _, name = relative.partition("/")
    if folder != IMAGES or not IMAGE_NAME.fullmatch(name):
        return None
    try:
        fd = os.open(log_dir / IMAGES / name, os.O_RDONLY | FILE_FLAGS)
    except OSError:  # deleted by the quota since, or a link
        return None
    try:
        size = os.fstat(fd).st_size
        return os.pread(fd, size, 0) if 0 < size <= MAX_JPEG else None
    finally:
        os.close(fd)


def _jsonl_files(log_dir: Path) -> list[Path]:
    """The current log, then the rotated ones, newest first (their names sort by their UTC stamp)."""
    rotated = sorted((p for p in log_dir.glob("predictions-*.jsonl") if ROTATED_NAME.fullmatch(p.name)), reverse=True)
    return [log_dir / JSONL, *rotated]


def last_logged_events(log_dir: Path, count: int) -> list[LoggedEvent]:
    """Up to count of the newest logged frames that still have their overlay JPEG, oldest first."""
    found: list[LoggedEvent] = []
    for path in _jsonl_files(log_dir):
        if len(found) >= count:
            break
        if not path.is_file() or path.is_symlink():
            continue
        for line in _lines_from_end(path):
            try:
                record = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):  # blank, or a line cut by a power failure
                continue
            if not isinstance(record, dict):
                continue
            overlay = _read_jpeg(log_dir, record.get("overlay_jpeg"))
            if overlay is None:
                continue
            found.append((record, _read_jpeg(log_dir, record.get("frame_jpeg")) or b"", overlay))
            if len(found) >= count:
                break
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
