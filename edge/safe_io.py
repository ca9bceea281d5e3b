"""Reading small files the user names (configs, secrets, manifests) without hanging or exhausting memory.

A FIFO, a device such as /dev/zero or a multi-gigabyte file named as a config or a token file would otherwise block
the start for good or be read until the kernel ends the process. Only regular files are read (opened with O_NONBLOCK,
checked with fstat before any read), and only up to a cap.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any


class UnsafeFileError(OSError):
    """Not a regular file, too large, or a path the OS cannot take (a NUL byte); strerror says which."""


class FileTooLargeError(UnsafeFileError):
    """A regular file over the cap."""


def read_regular(path: str | Path, cap: int, *, follow_links: bool = True) -> bytes:
    """The bytes of path if it is a regular file of at most cap bytes; UnsafeFileError or OSError otherwise."""
    if "\0" in str(path):
        raise UnsafeFileError(0, "the path contains a NUL byte")
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    if not follow_links:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeFileError(0, "not a regular file")
        if info.st_size > cap:
            raise FileTooLargeError(0, f"{info.st_size} bytes, over the {cap}-byte limit")
        data = os.read(fd, cap + 1)
        if len(data) > cap:  # grew since fstat
            raise FileTooLargeError(0, f"over the {cap}-byte limit")
        return data
    finally:
        os.close(fd)


def loads_json(text: str | bytes) -> Any:
    """json.loads, with nesting too deep for the parser a ValueError like any other malformed JSON."""
    try:
        return json.loads(text)
    except RecursionError as e:
        raise ValueError("JSON nested too deeply") from e
