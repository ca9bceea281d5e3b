"""The disk log's directory: which files in it are the log's own, and the descriptors it writes through.

The quota deletes old files, so it must never reach a file the log did not write. Two things make a file the log's
own: its name has the log's pattern (images/<UTC stamp>-<frame>-frame.jpg or -overlay.jpg, predictions-<UTC
stamp>.jsonl), and the directory carries the marker file MARKER, written when the log first claims the directory. A
directory without the marker is claimed only if its images/ holds nothing but files of the log's pattern (empty, or
written by a version before the marker); anything else there is someone's, and the log refuses to start rather than
mix its files with theirs. Symbolic links are never followed: a linked images/ is refused, and the files are opened
relative to directory descriptors with O_NOFOLLOW.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from edge.records import SinkError

JSONL = "predictions.jsonl"
IMAGES = "images"
MARKER = ".edge-explainer-log"
MARKER_TEXT = (
    "This folder is edge-explainer's disk log. To stay within [log] max_files, max_mb and keep_days it deletes,\n"
    "oldest first, only its own files: images/<UTC time>-<frame>-frame.jpg and -overlay.jpg, and\n"
    "predictions-<UTC time>.jsonl.\n"
    "Anything else here is never touched.\n"
)

_STAMP = r"\d{8}T\d{6}\.\d{3}Z"
IMAGE_NAME = re.compile(rf"{_STAMP}-\d{{8,}}-(?:frame|overlay)\.jpg")
TEMP_NAME = re.compile(rf"\.tmp-{_STAMP}-\d{{8,}}-(?:frame|overlay)\.jpg")
ROTATED_NAME = re.compile(rf"predictions-{_STAMP}\.jsonl")

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
FILE_FLAGS = os.O_NOFOLLOW | os.O_CLOEXEC  # added to every open of a file in the log


@dataclass(frozen=True)
class OwnFile:
    """A file the log wrote: its name relative to the directory descriptor dir_fd, and its size in bytes."""

    dir_fd: int
    name: str
    size: int


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return path.lstat()
    except (FileNotFoundError, NotADirectoryError):  # not there, or a file where a folder on its path should be
        return None


def inspect(directory: Path) -> bool:
    """Whether directory already carries the marker; raises SinkError for what the log refuses to write into.

    Reads only, so that --check-config can call it: a missing directory is fine (open() creates it).
    """
    for name, want_dir in ((IMAGES, True), (JSONL, False), (MARKER, False)):
        st = _lstat(directory / name)
        if st is None:
            continue
        if stat.S_ISLNK(st.st_mode):
            raise SinkError(f"[log] dir {directory}: {name} is a symbolic link; the log does not write through links")
        if want_dir != stat.S_ISDIR(st.st_mode):
            raise SinkError(f"[log] dir {directory}: {name} is not a {'folder' if want_dir else 'file'}")
    if (directory / MARKER).exists():
        return True
    images = directory / IMAGES
    if images.is_dir():
        foreign = sorted(p.name for p in images.iterdir()
                         if not (IMAGE_NAME.fullmatch(p.name) or TEMP_NAME.fullmatch(p.name)))
        if foreign:
            raise SinkError(f"[log] dir {directory}: {images} holds files edge-explainer did not write (e.g. "
                            f"{foreign[0]!r}, {len(foreign)} in all); give the log an empty folder of its own")
    return False


def check_creatable(directory: Path) -> None:
    """Raises SinkError unless directory exists and is writable, or could be created by open() (nothing is made)."""
    existing = directory
    while _lstat(existing) is None and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise SinkError(f"[log] dir {directory}: not writable ({existing} is not a folder)")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise SinkError(f"[log] dir {directory}: not writable ({existing}: permission denied)")
    if existing == directory:
        inspect(directory)


def claim(directory: Path) -> tuple[int, int]:
    """Make directory the log's (creating it, images/ and the marker as needed): (dir fd, images fd)."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SinkError(f"[log] dir {directory}: not writable ({e.strerror or e})") from e
    marked = inspect(directory)
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)  # the directory itself may be a link
    try:
        with contextlib.suppress(FileExistsError):
            os.mkdir(IMAGES, 0o755, dir_fd=dir_fd)
        images_fd = os.open(IMAGES, _DIR_FLAGS, dir_fd=dir_fd)
        if not marked:
            fd = os.open(MARKER, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | FILE_FLAGS, 0o644, dir_fd=dir_fd)
            try:
                os.write(fd, MARKER_TEXT.encode())
            finally:
                os.close(fd)
    except OSError as e:
        os.close(dir_fd)
        raise SinkError(f"[log] dir {directory}: not writable ({e.strerror or e})") from e
    return dir_fd, images_fd


def own_files(dir_fd: int, images_fd: int) -> Iterator[OwnFile]:
    """The log's own closed files (images, rotated JSONLs), in no particular order; links and others are skipped."""
    for fd, pattern in ((images_fd, IMAGE_NAME), (dir_fd, ROTATED_NAME)):
        with os.scandir(fd) as entries:
            for entry in entries:
                if pattern.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                    yield OwnFile(fd, entry.name, entry.stat(follow_symlinks=False).st_size)


def remove_stale_temps(images_fd: int) -> None:
    """Delete the log's own temporary JPEGs left by a power cut or a kill mid-write."""
    with os.scandir(images_fd) as entries:
        stale = [e.name for e in entries if TEMP_NAME.fullmatch(e.name) and e.is_file(follow_symlinks=False)]
    for name in stale:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=images_fd)
