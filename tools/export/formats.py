"""The model formats tools.export reads, one front end each, in the order they are asked: a PyTorch spec
(`module:callable`), an .onnx file, a .pt2 program, else a Keras model file. Each front end's module imports its
framework, so it is imported only when its format is exported, with a one-line error naming what to install."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from tools.export.front_end import ExportError, ExportOptions, FrontEnd, FrontEndModel
from tools.export.onnx import model_file
from tools.export.torch import model_spec, pt2_file


class KerasStackError(ExportError):
    """TensorFlow/Keras cannot be imported."""


@dataclass(frozen=True)
class OnDemand:
    """A front end whose module is imported at its first use: the module's load() and list_layers() do the work."""

    name: str
    module: str
    needs: str  # what to install, for the one-line error where the module's framework is missing
    error: type[ExportError]
    accepts: Callable[[str], bool]

    def recognises(self, model: str) -> bool:
        return bool(self.accepts(model))

    def load(self, model: str, weights: Path | None, options: ExportOptions) -> FrontEndModel:
        front: FrontEndModel = self.imported().load(model, weights, options)
        return front

    def list_layers(self, model: str, weights: Path | None, input_size: tuple[int, int], show_all: bool) -> list[str]:
        return list(self.imported().list_layers(model, weights, input_size, show_all))

    def imported(self) -> ModuleType:
        """The front end's module, or this front end's error in one line naming what to install."""
        try:
            return importlib.import_module(self.module)
        except ImportError as e:
            raise self.error(f"{self.needs}: {e}") from e


FRONT_ENDS: tuple[FrontEnd, ...] = (
    OnDemand("pytorch", "tools.export.torch.front_end", model_spec.NEEDS, model_spec.ModelSpecError,
             model_spec.is_torch_spec),
    OnDemand("onnx", "tools.export.onnx.front_end", model_file.NEEDS, model_file.OnnxModelError,
             model_file.is_onnx_file),
    OnDemand("pt2", "tools.export.torch.pt2_front_end", pt2_file.NEEDS, pt2_file.Pt2ModelError, pt2_file.is_pt2_file),
    OnDemand("keras", "tools.export.keras.front_end", "Keras models need requirements-tools.txt installed "
             "(tensorflow, keras)", KerasStackError, lambda model: True),
)


def front_end_for(model: str | Path) -> FrontEnd:
    """The first front end that recognises MODEL (Keras takes whatever the others do not)."""
    return next(front for front in FRONT_ENDS if front.recognises(str(model)))


def require(name: str) -> None:
    """A one-line error, before anything else runs, where the front end `name`'s framework is not installed."""
    front = next(front for front in FRONT_ENDS if front.name == name)
    assert isinstance(front, OnDemand)
    front.imported()
