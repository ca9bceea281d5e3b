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
    """The tools' own INFO lines (loggers under `tools.` and `edge.`); other libraries' only from WARNING, and with
    --debug everything. (litert-torch's lowering logs a line per ATen op through the root logger, JAX its backend
    probes, torch deprecation notices: none of it is anything a user exporting a model can act on.)"""
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not debug:
        for own in ("tools", "edge"):
            logging.getLogger(own).setLevel(logging.INFO)
    # TensorFlow, absl, torch and JAX log through Python logging too; their warnings drown the tool's own lines.
    # torch resets its own top logger's level when it is imported (after this), but not its children's: the pytree
    # one warns at litert-torch's import that an Enum registration is deprecated.
    for noisy in ("tensorflow", "absl", "h5py", "torch", "torch.utils._pytree", "jax"):
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
