"""What every workstation command shares: --debug, logging to stderr, and errors printed as one line (exit 2)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from edge.errors import EdgeError


@dataclass
class Status:
    code: int = 0


def add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--debug", action="store_true", help="verbose logging and full tracebacks")


def setup_logging(debug: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # TensorFlow and absl log through Python logging too; their INFO lines drown the tool's own.
    for noisy in ("tensorflow", "absl", "h5py"):
        logging.getLogger(noisy).setLevel(logging.WARNING if debug else logging.ERROR)


@contextmanager
def one_line_errors(debug: bool, *expected: type[BaseException]) -> Iterator[Status]:
    """Turn the errors a user can act on into `error: ...` on one line and exit status 2 (tracebacks with --debug)."""
    status = Status()
    try:
        yield status
    except (EdgeError, OSError, *expected) as e:  # type: ignore[misc]
        if debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        status.code = 2
