"""Constant folding at a static input size: Shape of a tensor whose shape is known, and every node whose inputs are
all constants, become initializers. torch.onnx.export computes `x.view(x.size(0), -1)` and ShuffleNet's channel
shuffle shapes from Shape nodes; left in, onnx2torch reshapes by tensors that torch.export sees as data-dependent,
and litert-torch cannot convert the features."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import numpy_helper
from onnx.reference import ReferenceEvaluator

# Ops without inputs that are not constants.
_NOT_FOLDED = ("RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli")


def fold(model: onnx.ModelProto, shapes: dict[str, tuple[int, ...]],
         reinfer: Callable[[onnx.ModelProto], onnx.ModelProto]) -> onnx.ModelProto:
    """`model` with its constant subgraphs folded into initializers (a new ModelProto), shapes inferred again."""
    constants: dict[str, NDArray[Any]] = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    opset = [onnx.helper.make_opsetid(o.domain, o.version) for o in model.opset_import]
    kept, folded = [], []
    for node in model.graph.node:
        value = _value(node, constants, shapes, opset)
        if value is None:
            kept.append(node)
            continue
        constants[node.output[0]] = value
        folded.append(numpy_helper.from_array(np.asarray(value), node.output[0]))
    if not folded:
        return model
    graph_outputs = {o.name for o in model.graph.output}
    needed = {i for node in kept for i in node.input} | graph_outputs
    out = onnx.ModelProto.FromString(model.SerializeToString())
    del out.graph.node[:]
    out.graph.node.extend(kept)
    out.graph.initializer.extend(t for t in folded if t.name in needed)
    return reinfer(out)


def _value(node: onnx.NodeProto, constants: dict[str, NDArray[Any]], shapes: dict[str, tuple[int, ...]],
           opset: list[onnx.OperatorSetIdProto]) -> NDArray[Any] | None:
    if len(node.output) != 1 or node.domain not in ("", "ai.onnx") or node.op_type in _NOT_FOLDED:
        return None
    if node.op_type == "Shape" and node.input[0] in shapes:
        start = _int_attribute(node, "start", 0)
        end = _int_attribute(node, "end", None)
        return np.array(shapes[node.input[0]], np.int64)[start:end]
    inputs = [name for name in node.input if name]
    if (not inputs and node.op_type != "Constant") or not all(name in constants for name in inputs):
        return None
    graph = onnx.helper.make_graph(
        [node], "fold",
        [onnx.helper.make_tensor_value_info(n, onnx.helper.np_dtype_to_tensor_dtype(constants[n].dtype), None)
         for n in inputs],
        [onnx.helper.make_tensor_value_info(node.output[0], onnx.TensorProto.UNDEFINED, None)])
    evaluator = ReferenceEvaluator(onnx.helper.make_model(graph, opset_imports=opset))
    feeds: dict[str, Any] = {n: constants[n] for n in inputs}
    outputs: Any = evaluator.run(None, feeds)  # a list, one array per output
    return np.asarray(outputs[0])


def _int_attribute(node: onnx.NodeProto, name: str, default: int | None) -> int | None:
    for attr in node.attribute:
        if attr.name == name:
            return int(attr.i)
    return default
