"""The graph as onnx2torch reads it: opset 17, the newest opset onnx2torch 1.5.15 converts every common op at (it lacks
Constant-19, ReduceMean-18, ...). Newer graphs (torch.onnx.export writes opset 20) are converted down with onnx's
version converter, names kept. The head is read from the graph at its own opset (tools/export/onnx/head_ops.py); only
the conversion to torch (the features, and the verifier's autograd reference) goes through here.

Gelu (opset 20) has no down-conversion and no onnx2torch converter: each Gelu node is first written out as the
opset-9 ops torch itself writes below opset 20, x * (1 + erf(x / sqrt 2)) * 0.5 (or the tanh approximation's formula),
its output keeping the node's name.
"""

from __future__ import annotations

import math

import numpy as np
import onnx
import onnx.version_converter
from onnx import helper, numpy_helper

from tools.export.onnx.graph import OnnxGraphError, attribute, opset_of

TORCH_OPSET = 17


def for_torch(model: onnx.ModelProto) -> onnx.ModelProto:
    """`model` (not changed) with its Gelu nodes decomposed, at opset TORCH_OPSET if it was newer."""
    return at_opset(decompose_gelu(model), TORCH_OPSET)


def at_opset(model: onnx.ModelProto, opset: int) -> onnx.ModelProto:
    current = opset_of(model, opset)
    if current <= opset:
        return model
    try:
        return onnx.version_converter.convert_version(model, opset)
    except Exception as e:  # the converter's adapters raise RuntimeError/ConvertError with multi-line messages
        raise OnnxGraphError(f"cannot convert the graph from opset {current} to {opset} (what onnx2torch reads): "
                             f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from e


def decompose_gelu(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of `model` whose default-domain Gelu nodes are elementary ops (the model itself if it has none)."""
    if not any(n.op_type == "Gelu" and n.domain in ("", "ai.onnx") for n in model.graph.node):
        return model
    out = onnx.ModelProto.FromString(model.SerializeToString())
    nodes: list[onnx.NodeProto] = []
    for i, node in enumerate(model.graph.node):
        if node.op_type == "Gelu" and node.domain in ("", "ai.onnx"):
            approximate = attribute(node, "approximate", b"none")
            nodes += _gelu_nodes(node.input[0], node.output[0], f"{node.name or 'Gelu'}/decomposed{i}",
                                 approximate.decode() if isinstance(approximate, bytes) else str(approximate), out)
        else:
            nodes.append(node)
    del out.graph.node[:]
    out.graph.node.extend(nodes)
    return out


_PREVIOUS = ""  # in a step's inputs: the previous step's output


def _gelu_nodes(x: str, y: str, prefix: str, approximate: str, model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """Gelu-20's definition in opset-9 ops, the last one writing y; constants are float32 initializers named after
    the node."""
    def const(name: str, value: float) -> str:
        model.graph.initializer.append(numpy_helper.from_array(np.array(value, np.float32), f"{prefix}/{name}"))
        return f"{prefix}/{name}"

    p = _PREVIOUS
    steps: list[tuple[str, tuple[str, ...]]]
    if approximate == "tanh":  # 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))
        steps = [("Mul", (x, x)), ("Mul", (x, p)), ("Mul", (const("c", 0.044715), p)), ("Add", (x, p)),
                 ("Mul", (const("k", math.sqrt(2 / math.pi)), p)), ("Tanh", (p,)), ("Add", (const("one", 1.0), p)),
                 ("Mul", (x, p)), ("Mul", (const("half", 0.5), p))]
    else:  # x * (1 + erf(x / sqrt 2)) * 0.5, as torch's opset-9 symbolic writes it
        steps = [("Div", (x, const("sqrt2", math.sqrt(2.0)))), ("Erf", (p,)), ("Add", (p, const("one", 1.0))),
                 ("Mul", (x, p)), ("Mul", (p, const("half", 0.5)))]
    made: list[onnx.NodeProto] = []
    for k, (kind, inputs) in enumerate(steps):
        name = f"{prefix}/{kind}_{k}"
        previous = made[-1].output[0] if made else _PREVIOUS
        made.append(helper.make_node(kind, [previous if i == _PREVIOUS else i for i in inputs],
                                     [y if k == len(steps) - 1 else name], name=name))
    return made
