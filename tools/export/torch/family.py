"""What the PyTorch family's front ends share (a PyTorch module, an ONNX graph through onnx2torch, a .pt2 program):
the head read at a 4-D target, the feature module's FLOPs, torchvision's preprocessing as the default, the refusals."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import fx

from edge.explain.bundle import Preprocess
from edge.explain.head import Head
from edge.explain.head_ops import Op
from tools.export import preprocess_spec
from tools.export.front_end import ExportError, ExportOptions
from tools.export.head_passes import HeadShapeError, finish_head

_LOGGER = logging.getLogger("tools.export")

FeatureShape = tuple[int, int, int]


def head_at(target: str, shape: Sequence[int] | None, convert: Callable[[FeatureShape], tuple[list[Op], list[str]]],
            graph_error: type[ExportError], op_error: type[ExportError]) -> tuple[Head, FeatureShape, list[str]]:
    """The checked head after a target of NCHW `shape`, the target's (h, w, k) and the head's layer names; convert
    turns the nodes after the target into edge ops."""
    if shape is None or len(shape) != 4:
        raise graph_error(f"target layer {target!r} gives shape {tuple(shape) if shape else 'unknown'}; it must be "
                          "a 4-D feature map (see --list-layers)")
    feature_shape = (int(shape[2]), int(shape[3]), int(shape[1]))  # NCHW -> (h, w, k)
    ops, names = convert(feature_shape)
    try:
        return finish_head(ops, feature_shape), feature_shape, names
    except HeadShapeError as e:
        raise op_error(str(e)) from e


def flops(features: fx.GraphModule, input_size: tuple[int, int]) -> int:
    """Multiply-adds x 2 of the convolutions and linear layers, counted by torch's FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        features(torch.zeros(1, 3, *input_size))
    return int(counter.get_total_flops())


def preprocess(options: ExportOptions, channels: int) -> Preprocess:
    """--preprocess, or torchvision's 'imagenet' (mean/std on RGB / 255) when it is not given."""
    if options.preprocess is None:
        _LOGGER.info("--preprocess not given: assuming 'imagenet' (torchvision's mean/std on RGB / 255)")
    return preprocess_spec.parse(options.preprocess or "imagenet", options.channel_order, channels, options.resize)


def refuse_weights_and_quantize(what: str, weights: Path | None, options: ExportOptions) -> None:
    if weights is not None or options.quantize:
        raise ExportError(f"{what} holds its weights and exports float features: drop --weights/--quantize")
