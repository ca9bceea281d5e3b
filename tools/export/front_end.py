"""What every front end (Keras, PyTorch) hands the bundle writer in tools/export/exporter.py."""

from __future__ import annotations

from dataclasses import dataclass

from edge.explain.head import Head


@dataclass
class FrontEndModel:
    tflite: bytes  # the feature model: NHWC input (1, h, w, c) -> the target's activations A (1, h', w', k)
    head: Head  # the layers after the target as edge ops
    input_shape: tuple[int, int, int]  # (h, w, c)
    feature_shape: tuple[int, int, int]  # (h', w', k)
    target: str
    head_layers: tuple[str, ...]
    flops: int  # of the feature model, per frame
    source: dict[str, str]  # provenance for the manifest
