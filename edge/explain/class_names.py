"""Class lists in one line: a 1000-class model's names would fill a log line, a status line or an HA field."""

from __future__ import annotations

from collections.abc import Sequence


def summary(names: Sequence[str], first: int = 5) -> str:
    """`1000 classes: tench, goldfish, great white shark, ...` rather than a thousand names on one line."""
    shown = ", ".join(names[:first])
    return f"{len(names)} classes: {shown}{', ...' if len(names) > first else ''}"
