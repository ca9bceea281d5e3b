"""The ONNX nodes after the target -> the edge NumPy head's ops (tools/export/head_passes.py finishes them).

The head is read from the ONNX graph itself (op types, attributes, initializers), not from onnx2torch's modules: the
ONNX operator set is the contract. The walk over the head (shapes, and the NCHW flatten's permutation of the
Gemm/MatMul or BatchNormalization that reads it) is tools/export/head_walk.py's, shared with the PyTorch front end.
"""

from __future__ import annotations

import numpy as np
import onnx
from numpy.typing import NDArray

from edge.explain import activations
from edge.explain.head_ops import Activation, Affine, Dense, Op, Pool2D, Reduce
from tools.export.head_walk import HeadWalk, batchnorm_affine, unsupported_message
from tools.export.onnx import elementwise
from tools.export.onnx.graph import SHAPE_OPS, OnnxGraph, attribute, is_reduction, reduced_axes
from tools.export.onnx.model_file import OnnxExportError

SUPPORTED = ("GlobalAveragePool, GlobalMaxPool, ReduceMean/ReduceMax over H,W, MaxPool/AveragePool without padding, "
             "Flatten, Reshape to a vector, Squeeze, Gemm, MatMul (+ Add), Relu, Clip(0, 6), Sigmoid, Softmax, "
             "HardSwish, HardSigmoid, Gelu (exact), the element-wise spellings of SiLU, GELU and Hardswish "
             "(x*Sigmoid(x), the Erf formula, x*HardSigmoid(x)), Dropout, Identity, BatchNormalization")
_ACTIVATIONS = {"Relu": "relu", "Sigmoid": "sigmoid", "HardSwish": "hardswish", "HardSigmoid": "hardsigmoid",
                "Gelu": "gelu"}
_IDENTITIES = ("Dropout", "Identity")


class OnnxHeadOpError(OnnxExportError):
    """An ONNX node after the target that the NumPy head cannot run."""


def convert(g: OnnxGraph, nodes: list[onnx.NodeProto], feature_shape: tuple[int, int, int],
            target: str) -> tuple[list[Op], list[str]]:
    """Edge ops for the head's nodes, and the names of the ONNX nodes they came from."""
    state = HeadWalk(feature_shape)
    data = [n for n in nodes if n.op_type not in SHAPE_OPS]
    readers = elementwise.consumers(g.model)
    i = 0
    while i < len(data):
        found = elementwise.match(g, data, i, readers)  # GELU as Div/Erf/Add/Mul/Mul, SiLU as x*Sigmoid(x), ...
        if found is not None:
            state.add([_activation(found.name, found.describe(), found.nodes[0], target)], _name(found.nodes[0]))
            i += len(found.nodes)
            continue
        state.add(_node_ops(g, data[i], state, target), _name(data[i]))
        i += 1
    return state.ops, state.names


def _name(node: onnx.NodeProto) -> str:
    return node.name or node.output[0]


def _what(node: onnx.NodeProto) -> str:
    return f"{_name(node)} ({node.op_type})"


def unsupported(what: str, target: str, why: str = "") -> OnnxHeadOpError:
    return OnnxHeadOpError(unsupported_message(what, target, SUPPORTED, why))


def _activation(name: str, shown: str, node: onnx.NodeProto, target: str) -> Activation:
    if name in elementwise.REFUSED:
        raise unsupported(shown, target, elementwise.REFUSED[name][0])
    if name not in activations.ACTIVATIONS:
        raise unsupported(f"{_name(node)} ({shown})", target, f"the device's head has no {name}; "
                          f"edge/explain/activations.py runs {', '.join(activations.ACTIVATIONS)}")
    return Activation(name)


def _node_ops(g: OnnxGraph, node: onnx.NodeProto, state: HeadWalk, target: str) -> list[Op]:
    is_map = state.is_map
    op = node.op_type
    if op in _IDENTITIES:
        return []
    if op in ("Flatten", "Reshape", "Squeeze"):
        if not is_map:  # (1, c, 1, 1) -> (1, c) after a global pooling: nothing to do on the device's vector
            return []
        if op != "Squeeze" and is_reduction(g, node) and (op == "Reshape" or attribute(node, "axis", 1) == 1):
            return [Reduce("flatten")]
    if op in ("GlobalAveragePool", "GlobalMaxPool") and is_map:
        return [Reduce("avg" if op == "GlobalAveragePool" else "max")]
    if op in ("ReduceMean", "ReduceMax") and is_map and reduced_axes(g, node) == {2, 3}:
        return [Reduce("avg" if op == "ReduceMean" else "max")]
    if op in ("MaxPool", "AveragePool") and is_map:
        return [_pool(node, target)]
    if op in ("Gemm", "MatMul") and not is_map:
        return [_dense(g, node, state, target)]
    if op == "Add" and not is_map and state.ops and isinstance(state.ops[-1], Dense):
        return _bias(g, node, state, target)
    if op == "BatchNormalization":
        return [_batchnorm(g, node, state, target)]
    if op == "Clip":
        return [_clip(g, node, target)]
    if op == "Softmax" and not is_map and attribute(node, "axis", -1) in (1, -1):
        return [Activation("softmax")]
    if op in _ACTIVATIONS:
        if op == "HardSigmoid" and not np.allclose((attribute(node, "alpha", 0.2), attribute(node, "beta", 0.5)),
                                                   (1 / 6, 0.5)):
            raise unsupported(_what(node), target, "only HardSigmoid with alpha 1/6, beta 0.5 (torch's Hardsigmoid)")
        if op == "Gelu" and _text(attribute(node, "approximate", b"none")) != "none":
            raise unsupported(_what(node), target, "only GELU's exact erf form, not "
                              f"approximate={_text(attribute(node, 'approximate'))!r}")
        return [_activation(_ACTIVATIONS[op], op, node, target)]
    raise unsupported(_what(node), target)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _constant(g: OnnxGraph, node: onnx.NodeProto, index: int, target: str) -> NDArray[np.float64]:
    name = node.input[index] if len(node.input) > index else ""
    if name not in g.constants:
        raise unsupported(_what(node), target, f"its input {name!r} must be a constant (an initializer)")
    return np.asarray(g.constants[name], np.float64)


def _dense(g: OnnxGraph, node: onnx.NodeProto, state: HeadWalk, target: str) -> Dense:
    """Gemm: alpha * A @ op(B) + beta * C; MatMul: A @ B (a following Add is its bias)."""
    weight = _constant(g, node, 1, target)
    if node.op_type == "Gemm":
        if attribute(node, "transA", 0):
            raise unsupported(_what(node), target, "Gemm with transA")
        kernel = (weight.T if attribute(node, "transB", 0) else weight) * attribute(node, "alpha", 1.0)
        bias = _constant(g, node, 2, target) * attribute(node, "beta", 1.0) if len(node.input) > 2 and node.input[2] \
            else np.zeros(kernel.shape[1])
    else:
        kernel, bias = weight, np.zeros(weight.shape[-1])
    if kernel.ndim != 2 or kernel.shape[0] != state.shape[0]:
        raise unsupported(_what(node), target, f"weights {kernel.shape} do not fit a vector of {state.shape[0]}")
    rows = state.permuted(np.ascontiguousarray(kernel, np.float32))
    return Dense(rows, np.broadcast_to(bias, kernel.shape[1:]).astype(np.float32))


def _bias(g: OnnxGraph, node: onnx.NodeProto, state: HeadWalk, target: str) -> list[Op]:
    """MatMul -> Add(constant): the constant joins the Dense's bias."""
    other = [t for t in node.input if t in g.constants]
    dense = state.ops[-1]
    assert isinstance(dense, Dense)
    if len(other) != 1:
        raise unsupported(_what(node), target, "only Add of a constant bias right after Gemm/MatMul")
    bias = np.asarray(g.constants[other[0]], np.float64).reshape(-1)
    state.ops[-1] = Dense(dense.kernel, (dense.bias + np.broadcast_to(bias, dense.bias.shape)).astype(np.float32))
    return []


def _batchnorm(g: OnnxGraph, node: onnx.NodeProto, state: HeadWalk, target: str) -> Affine:
    gamma, beta, mean, var = (_constant(g, node, i, target) for i in (1, 2, 3, 4))
    return batchnorm_affine(gamma, beta, mean, var, attribute(node, "epsilon", 1e-5), state)


def _clip(g: OnnxGraph, node: onnx.NodeProto, target: str) -> Activation:
    """Clip(0, 6) is ReLU6 and Clip(0, inf) ReLU; bounds are attributes before opset 11, constant inputs since."""
    bounds = [attribute(node, "min"), attribute(node, "max")]
    for i in (1, 2):
        if len(node.input) > i and node.input[i]:
            bounds[i - 1] = float(_constant(g, node, i, target))
    if bounds[0] == 0 and bounds[1] == 6:
        return Activation("relu6")
    if bounds[0] == 0 and bounds[1] is None:
        return Activation("relu")
    raise unsupported(_what(node), target, f"only Clip(0, 6) (ReLU6) and Clip(0, inf), not Clip{tuple(bounds)}")


def _pool(node: onnx.NodeProto, target: str) -> Pool2D:
    kernel = tuple(int(v) for v in attribute(node, "kernel_shape"))
    stride = tuple(int(v) for v in attribute(node, "strides", kernel))
    padded = any(attribute(node, "pads", [0])) or attribute(node, "auto_pad", b"NOTSET") not in (b"NOTSET", b"VALID")
    if padded or attribute(node, "ceil_mode", 0) or any(v != 1 for v in attribute(node, "dilations", [1])):
        raise unsupported(_what(node), target, "only pooling without padding, dilation or ceil_mode")
    return Pool2D("max" if node.op_type == "MaxPool" else "avg", kernel, stride, "valid")  # type: ignore[arg-type]
