"""MODEL arguments that are ONNX files: recognised by suffix, read and checked, with a one-line error for each way a
file can be unusable. Nothing here imports onnx at module level, so that the CLI can name what is missing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tools.export.front_end import ExportError

NEEDS = "ONNX models need requirements-torch.txt installed (onnx, onnx2torch, onnxruntime, torch, litert-torch)"


class OnnxExportError(ExportError):
    """Base of the ONNX front end's errors."""


class OnnxModelError(OnnxExportError):
    """The .onnx file cannot be read, is not a valid model, or has an input the front end cannot take."""


def is_onnx_file(model: str | Path) -> bool:
    return str(model).lower().endswith(".onnx")


def load(path: Path) -> Any:
    """The checked onnx.ModelProto of `path` (read only: the file is never written)."""
    try:
        import onnx
    except ImportError as e:
        raise OnnxModelError(f"{NEEDS}: {e}") from e
    if not path.is_file():
        raise OnnxModelError(f"ONNX model {path} does not exist")
    try:
        model = onnx.load_model(str(path))
    except Exception as e:  # protobuf's DecodeError, onnx's own errors, OSError for external data: one line each
        raise OnnxModelError(f"cannot read ONNX model {path}: {type(e).__name__}: {_first_line(e)}") from e
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as e:
        raise OnnxModelError(f"ONNX model {path} is not valid: {_first_line(e)}") from e
    if not model.graph.node:
        raise OnnxModelError(f"ONNX model {path} has no nodes (is it an ONNX model?)")
    return model


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:300] if text else "(no message)"
