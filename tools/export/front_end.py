"""The seam between the model formats and the bundle writer: what a front end is given (ExportOptions), what it
hands back (FrontEndModel), what it is (FrontEnd), and the one base of every error a user can act on (ExportError)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from edge.explain.bundle import Preprocess
from edge.explain.head import Head


class ExportError(Exception):
    """The model cannot be exported as asked; the message says why and what to do (the CLIs print it in one line)."""


@dataclass
class ExportOptions:
    out: Path
    target_layer: str | None = None
    score: str = "logit"
    classes: list[str] | None = None
    preprocess: str | None = None  # None: the front end's default (Keras: from the model's first layers)
    channel_order: str | None = None
    resize: str = "bilinear"
    quantize: str | None = None  # None or "int8"
    calibration: Path | None = None
    calibration_count: int = 200
    check: bool = True
    head_dtype: str = "float32"  # storage of the head's Dense kernels (tools/export/head_storage.py)
    fold: bool = True  # fold BatchNorms after ReLU convolutions into them (tools/export/keras/feature_fold.py)
    input_size: tuple[int, int] = (224, 224)  # PyTorch models: the (height, width) they are traced and converted at


@dataclass
class FrontEndModel:
    """A model split at its target layer: what every front end hands the bundle writer (tools/export/exporter.py)."""

    tflite: bytes  # the feature model: NHWC input (1, h, w, c) -> the target's activations A (1, h', w', k)
    head: Head  # the layers after the target as edge ops
    input_shape: tuple[int, int, int]  # (h, w, c)
    feature_shape: tuple[int, int, int]  # (h', w', k)
    target: str
    head_layers: tuple[str, ...]
    flops: int  # of the feature model, per frame
    source: dict[str, str]  # provenance for the manifest
    preprocess: Preprocess  # --preprocess as given, else the front end's default for this model


class FrontEnd(Protocol):
    """One model format (tools/export/formats.py lists them): recognise a MODEL argument, load it split at the
    target layer with the head read from the layers after it, and list the layers that could be the target."""

    @property
    def name(self) -> str: ...

    def recognises(self, model: str) -> bool: ...

    def load(self, model: str, weights: Path | None, options: ExportOptions) -> FrontEndModel: ...

    def list_layers(self, model: str, weights: Path | None, input_size: tuple[int, int], show_all: bool) -> list[str]:
        ...
