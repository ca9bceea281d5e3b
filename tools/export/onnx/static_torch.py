"""onnx2torch's Reshape and Slice modules take their shape and bounds as tensors (buffers of the initializers), which
torch.export (under litert-torch) treats as data-dependent values and refuses to convert. At a static input every
such argument is known: each of these modules whose arguments are constants is swapped for one that holds them as
Python numbers (ShuffleNet's channel shuffle, `x.view(...)`, `x.chunk(...)` inside the features)."""

from __future__ import annotations

from typing import Any

import onnx
import torch
from torch import fx, nn

from tools.export.onnx.graph import OnnxGraph


class StaticReshape(nn.Module):  # type: ignore[misc,unused-ignore]  # (torch untyped where not installed)
    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.reshape(x, self.shape)


class StaticSlice(nn.Module):  # type: ignore[misc,unused-ignore]
    def __init__(self, index: tuple[slice, ...]) -> None:
        super().__init__()
        self.index = index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[self.index]


def bake(gm: fx.GraphModule, g: OnnxGraph) -> fx.GraphModule:
    """`gm` with its constant-argument Reshape and Slice modules replaced (in place) by StaticReshape/StaticSlice."""
    for node in list(gm.graph.nodes):
        if node.op != "call_module":
            continue
        module: Any = gm.get_submodule(str(node.target))
        kind = type(module).__name__
        if kind not in ("OnnxReshape", "OnnxSlice"):
            continue
        out = str(module.onnx_mapping.outputs[0])
        onnx_node = g.producer[out]
        static = _reshape(g, out) if kind == "OnnxReshape" else _slice(g, onnx_node)
        if static is not None:
            static.onnx_mapping = module.onnx_mapping  # the ONNX tensors it computes, as for onnx2torch's modules
            gm.add_submodule(str(node.target), static)
            node.args, node.kwargs = node.args[:1], {}
    gm.graph.eliminate_dead_code()
    gm.recompile()
    return gm


def _reshape(g: OnnxGraph, out: str) -> StaticReshape | None:
    shape = g.shapes.get(out)
    return StaticReshape(shape) if shape is not None else None


def _slice(g: OnnxGraph, node: onnx.NodeProto) -> StaticSlice | None:
    inputs = list(node.input)
    shape = g.shapes.get(inputs[0])
    if shape is None or not all(name in g.constants for name in inputs[1:] if name):
        return None
    starts, ends = (g.constants[name].tolist() for name in inputs[1:3])
    axes = g.constants[inputs[3]].tolist() if len(inputs) > 3 and inputs[3] else list(range(len(starts)))
    steps = g.constants[inputs[4]].tolist() if len(inputs) > 4 and inputs[4] else [1] * len(starts)
    if any(step <= 0 for step in steps):
        return None  # reversed slices stay with onnx2torch
    index = [slice(None)] * len(shape)
    for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
        size = shape[axis]
        first, last = (max(0, min(size, v + size if v < 0 else v)) for v in (start, end))
        index[axis] = slice(first, last, step)
    return StaticSlice(tuple(index))
