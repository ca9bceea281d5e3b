"""Activations that ONNX exporters write as several element-wise nodes, recognised by what they compute.

torch.onnx.export writes GELU below opset 20 as Div/Erf/Add/Mul/Mul (x * (1 + erf(x / sqrt 2)) * 0.5), SiLU as
Mul(x, Sigmoid(x)), Hardswish at opset 13 as Mul(x, HardSigmoid(x)); other exporters order the nodes, the operands
and the constants differently (0.5 * x first, Mul by 1/sqrt 2, ...). Matching each spelling would miss the next one, so
a run of consecutive element-wise nodes that reads one tensor (and scalar constants) and gives one is evaluated on a
grid of inputs with onnx's reference evaluator and compared with the device's activations (edge/explain/activations.py).
GELU's tanh approximation is recognised too, to be refused by name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx.reference import ReferenceEvaluator

from edge.explain import activations
from tools.export.onnx.graph import OnnxGraph, opset_of

ELEMENTWISE = ("Add", "Sub", "Mul", "Div", "Pow", "Neg", "Reciprocal", "Sqrt", "Exp", "Erf", "Tanh", "Sigmoid",
               "HardSigmoid", "Relu", "Clip", "Softplus", "Min", "Max")
_NONLINEAR = ("Erf", "Tanh", "Sigmoid", "HardSigmoid", "Relu", "Clip", "Softplus", "Min", "Max", "Exp", "Sqrt")
MAX_NODES = 12  # the tanh approximation of GELU is 9 nodes once its constants are folded
# (321,) float32 from -8 to 8 in steps of 0.05: the kinks of relu6/hardswish/hardsigmoid at 0, +-3, 6 and both tails.
_PROBE = np.linspace(-8.0, 8.0, 321, dtype=np.float32)
_DEVICE = ("relu", "relu6", "sigmoid", "hardswish", "hardsigmoid", "silu", "gelu")


def _gelu_tanh(x: NDArray[np.float32]) -> NDArray[np.float64]:
    v = x.astype(np.float64)
    return 0.5 * v * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (v + 0.044715 * v**3)))


# Functions the device does not run, named so that the error can say what the nodes are.
REFUSED: dict[str, tuple[str, Callable[[NDArray[np.float32]], NDArray[np.float64]]]] = {
    "gelu_tanh": ("GELU's tanh approximation (approximate='tanh'); the device runs GELU's exact erf form only",
                  _gelu_tanh)}


@dataclass(frozen=True)
class Match:
    name: str  # an edge activation, or a key of REFUSED
    nodes: tuple[onnx.NodeProto, ...]

    def describe(self) -> str:
        first, last = (n.name or n.output[0] for n in (self.nodes[0], self.nodes[-1]))
        return f"{first} .. {last} ({'/'.join(n.op_type for n in self.nodes)})"


def consumers(model: onnx.ModelProto) -> dict[str, int]:
    """Tensor -> how many nodes read it (graph outputs count as one reader more)."""
    count: dict[str, int] = {o.name: 1 for o in model.graph.output}
    for node in model.graph.node:
        for name in node.input:
            count[name] = count.get(name, 0) + 1
    return count


def match(g: OnnxGraph, nodes: list[onnx.NodeProto], start: int, readers: dict[str, int]) -> Match | None:
    """The shortest run nodes[start:start + n] (n >= 2) that computes a known activation of one tensor, if any."""
    for end in range(start + 2, min(len(nodes), start + MAX_NODES) + 1):
        group = nodes[start:end]
        if not all(_is_scalar_elementwise(g, n) for n in group):
            return None  # a longer run holds this node too
        inputs = _outside_inputs(g, group)
        if len(inputs) > 1:
            return None
        if len(inputs) == 1 and _is_closed(group, readers) and any(n.op_type in _NONLINEAR for n in group):
            name = _identify(g, group, inputs[0])
            if name is not None:
                return Match(name, tuple(group))
    return None


def _is_scalar_elementwise(g: OnnxGraph, node: onnx.NodeProto) -> bool:
    return node.op_type in ELEMENTWISE and node.domain in ("", "ai.onnx") and len(node.output) == 1 and all(
        np.size(g.constants[name]) == 1 for name in node.input if name in g.constants)


def _outside_inputs(g: OnnxGraph, group: list[onnx.NodeProto]) -> list[str]:
    made = {n.output[0] for n in group}
    return sorted({name for n in group for name in n.input if name and name not in made and name not in g.constants})


def _is_closed(group: list[onnx.NodeProto], readers: dict[str, int]) -> bool:
    """Every output but the last is read inside the group only."""
    inside: dict[str, int] = {}
    for node in group:
        for name in node.input:
            inside[name] = inside.get(name, 0) + 1
    return all(readers.get(n.output[0], 0) == inside.get(n.output[0], 0) for n in group[:-1])


def _identify(g: OnnxGraph, group: list[onnx.NodeProto], x: str) -> str | None:
    """The device activation (or REFUSED key) the group computes on the probe grid, to float32 rounding."""
    y = _evaluate(g, group, x)
    if y is None:
        return None
    for name in _DEVICE:
        if _close(y, activations.forward(name, _PROBE)):
            return name
    for name, (_, reference) in REFUSED.items():
        if _close(y, reference(_PROBE)):
            return name
    return None


def _close(y: NDArray[Any], reference: NDArray[Any]) -> bool:
    ref = np.asarray(reference, np.float64)
    return bool(np.all(np.abs(y - ref) <= 1e-5 * np.maximum(1.0, np.abs(ref))))


def _evaluate(g: OnnxGraph, group: list[onnx.NodeProto], x: str) -> NDArray[np.float64] | None:
    constants = sorted({name for n in group for name in n.input if name in g.constants})
    value_info = [onnx.helper.make_tensor_value_info(x, onnx.TensorProto.FLOAT, None)] + [
        onnx.helper.make_tensor_value_info(n, onnx.helper.np_dtype_to_tensor_dtype(g.constants[n].dtype), None)
        for n in constants]
    output = onnx.helper.make_tensor_value_info(group[-1].output[0], onnx.TensorProto.UNDEFINED, None)
    model = onnx.helper.make_model(onnx.helper.make_graph(group, "activation", value_info, [output]),
                                   opset_imports=[onnx.helper.make_opsetid("", opset_of(g.model))])
    feeds: dict[str, Any] = {n: g.constants[n] for n in constants}
    try:
        outputs: Any = ReferenceEvaluator(model).run(None, {x: _PROBE, **feeds})
    except Exception:  # a dtype or broadcast the probe does not fit: not an activation of x
        return None
    y = np.asarray(outputs[0], np.float64)
    return y.reshape(-1) if y.size == _PROBE.size else None
