"""MODEL arguments that name a PyTorch model: `package.module:callable` or `path/to/file.py:callable`, plus weights.

The callable is called without arguments and must return an nn.Module; --weights is a state_dict saved with
`torch.save(model.state_dict(), PATH)`, loaded with weights_only=True (no pickled code runs).
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from pathlib import Path
from typing import Any

from tools.export.front_end import ExportError

NEEDS = "PyTorch models need requirements-torch.txt installed (torch, torchvision, litert-torch)"
_DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
_MODEL_SUFFIXES = {".keras", ".h5", ".hdf5", ".json", ".onnx", ".pt2", ".pt", ".pth"}


class TorchExportError(ExportError):
    """Base of the PyTorch front ends' errors (defined here, where torch is not imported)."""


class ModelSpecError(TorchExportError):
    """MODEL does not name a callable that builds an nn.Module, or the weights do not fit it."""


def is_torch_spec(model: str) -> bool:
    """True for `module:callable` and `file.py:callable` (a Windows-style drive letter is not a module)."""
    module, sep, attr = model.rpartition(":")
    if not sep or not _DOTTED.match(attr):
        return False
    return module.endswith(".py") or bool(_DOTTED.match(module))


def refuse_malformed(model: str) -> None:
    """A MODEL that is no file and no valid PyTorch spec, but was meant as one: say what the form is, in one line."""
    if Path(model).exists() or is_torch_spec(model):
        return
    if ":" in model:
        raise ModelSpecError(f"MODEL {model!r} is neither a model file nor package.module:callable / file.py:callable "
                             "(a module's dotted name or a .py path, ':', and a function or class returning an "
                             "nn.Module, e.g. torchvision.models:resnet18)")
    if _DOTTED.match(model) and "." in model and Path(model).suffix.lower() not in _MODEL_SUFFIXES:
        raise ModelSpecError(f"MODEL {model!r}: no such model file; a PyTorch model names its callable too, "
                             f"e.g. {model}:CALLABLE")


def load(model: str, weights: Path | None) -> Any:
    """The nn.Module that MODEL builds, in eval mode, with --weights loaded into it."""
    try:
        import torch
    except ImportError as e:
        raise ModelSpecError(f"{NEEDS}: {e}") from e

    module_name, _, attr = model.rpartition(":")
    module = _import(module_name)
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ModelSpecError(f"{model!r}: {module_name} has no callable {attr!r}")
    try:
        net = factory()
    except Exception as e:  # the user's code: whatever it raises is reported in one line
        raise ModelSpecError(f"{model!r}: calling {attr}() failed: {type(e).__name__}: {e}") from e
    if not isinstance(net, torch.nn.Module):
        raise ModelSpecError(f"{model!r}: {attr}() returned {type(net).__name__}, not a torch.nn.Module")
    if weights is not None:
        _load_weights(net, weights)
    return net.eval()


def _import(module_name: str) -> Any:
    if module_name.endswith(".py"):
        path = Path(module_name)
        if not path.is_file():
            raise ModelSpecError(f"model file {module_name!r} does not exist")
        spec = importlib.util.spec_from_file_location(path.stem, path)
        if spec is None or spec.loader is None:
            raise ModelSpecError(f"cannot import {module_name!r} as a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module  # so that its classes can be found again by name (pickling, fx)
        try:
            spec.loader.exec_module(module)
        except Exception as e:
            raise ModelSpecError(f"importing {module_name!r} failed: {type(e).__name__}: {e}") from e
        return module
    try:
        return importlib.import_module(module_name)
    except ImportError as e:
        raise ModelSpecError(f"cannot import module {module_name!r}: {e}") from e


def _load_weights(net: Any, weights: Path) -> None:
    import torch

    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises UnpicklingError, RuntimeError, EOFError... for files that are not state_dicts
        raise ModelSpecError(f"cannot read weights {weights}: {type(e).__name__}: {str(e).splitlines()[0]}") from e
    if not isinstance(state, dict):
        raise ModelSpecError(f"weights {weights} hold a {type(state).__name__}, not a state_dict "
                             "(save them with torch.save(model.state_dict(), PATH))")
    try:
        net.load_state_dict(state)
    except RuntimeError as e:  # "Error(s) in loading state_dict for X:\n\tMissing key(s) ...": the second line says it
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        detail = lines[1] if len(lines) > 1 else (lines[0] if lines else "")
        raise ModelSpecError(f"weights {weights} do not fit the model: {detail[:300]}") from e
