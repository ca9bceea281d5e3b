"""MODEL arguments that are `.pt2` files (`torch.export.save`): recognised by suffix and read with a one-line error
for each way a file can be unusable. torch is imported only inside the functions, so that the CLI can name what is
missing."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from tools.export.torch.model_spec import TorchExportError

NEEDS = ".pt2 models need requirements-torch.txt installed (torch, litert-torch)"


class Pt2ModelError(TorchExportError):
    """The .pt2 file cannot be read as an ExportedProgram, or is not an image classifier the front end can take."""


def is_pt2_file(model: str | Path) -> bool:
    return str(model).lower().endswith(".pt2")


def load(path: Path) -> Any:
    """The torch.export.ExportedProgram saved in `path`."""
    try:
        import torch
    except ImportError as e:
        raise Pt2ModelError(f"{NEEDS}: {e}") from e
    if not path.is_file():
        raise Pt2ModelError(f".pt2 model {path} does not exist")
    # torch.export.load logs a warning with a traceback when the archive is not a current .pt2, then tries the
    # legacy format; whatever fails is reported below, in one line.
    torch_logger = logging.getLogger("torch.export")
    level = torch_logger.level
    torch_logger.setLevel(logging.ERROR)
    try:
        return torch.export.load(str(path))
    except Exception as e:  # BadZipFile, RuntimeError, KeyError, SerializeError...: whatever a broken archive raises
        raise Pt2ModelError(f"cannot read {path} as a torch.export program (torch.export.save's .pt2): "
                            f"{type(e).__name__}: {_first_line(e)}") from e
    finally:
        torch_logger.setLevel(level)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:300] if text else "(no message)"
