"""The ATen ops of a `.pt2` program after the target -> the edge NumPy head's ops, the same ones the PyTorch front end
makes from modules (tools/export/torch/head_ops.py, whose state, NCHW->NHWC row permutation and errors are reused).

Both spellings torch.export gives are read: the default one (aten.linear, aten.batch_norm, aten.hardswish_, ...) and
the core-ATen one after run_decompositions() (aten.addmm with a transposed weight, aten.mean.dim, aten.view,
aten._native_batch_norm_legit_no_training), except that decomposed activations (hardswish as add/clamp/mul/div) are
refused by their first op.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import fx

from edge.explain.head_ops import Activation, Affine, Dense, Op, Pool2D, Reduce
from tools.export.head_walk import HeadWalk
from tools.export.torch.head_ops import HeadOpError, add_ops, gelu, node_arg, permuted, reduced_dims, unsupported
from tools.export.torch.pt2_graph import module_paths, op_name, shape_of

_ACTIVATIONS = {"relu": "relu", "relu_": "relu", "sigmoid": "sigmoid", "sigmoid_": "sigmoid",
                "hardswish": "hardswish", "hardswish_": "hardswish", "hardsigmoid": "hardsigmoid",
                "hardsigmoid_": "hardsigmoid", "silu": "silu", "silu_": "silu"}
_IDENTITIES = {"dropout", "dropout_", "feature_dropout", "alpha_dropout", "clone", "alias", "detach", "contiguous"}
_FLATTENS = {"flatten", "view", "_unsafe_view", "reshape", "squeeze"}


def convert(gm: fx.GraphModule, head_nodes: list[fx.Node], feature_shape: tuple[int, int, int],
            target: str) -> tuple[list[Op], list[str]]:
    """Edge ops for the head nodes, and the modules (or functional calls) they came from, in order."""
    state = HeadWalk(feature_shape)
    for node in head_nodes:
        if op_name(node) == "sym_size":
            continue
        add_ops(state, _node_ops(gm, node, state, target), where(node))
    names = [name for i, name in enumerate(state.names) if i == 0 or name != state.names[i - 1]]
    return state.ops, names


def where(node: fx.Node) -> str:
    """The innermost module the node ran in (a Linear's permute and addmm are both 'classifier.0'), else its name."""
    paths = module_paths(node)
    return paths[-1] if paths else node.name


def _node_ops(gm: fx.GraphModule, node: fx.Node, state: HeadWalk, target: str) -> list[Op]:
    name, what, is_map = op_name(node), f"{where(node)} ({node.target})", len(state.shape) == 3
    if name in _ACTIVATIONS:
        return [Activation(_ACTIVATIONS[name])]
    if name in _IDENTITIES or (name == "getitem" and node.args[1] == 0):
        return []
    if name in ("hardtanh", "hardtanh_") and tuple(node.args[1:3]) == (0.0, 6.0):
        return [Activation("relu6")]
    if name in ("gelu", "gelu_"):
        return [gelu(node_arg(node, 1, "approximate") or "none", what, target)]
    if name in ("softmax", "_softmax") and not is_map and node_arg(node, 1, "dim") in (1, -1):
        return [Activation("softmax")]
    if name in ("linear", "addmm", "mm", "conv2d"):
        return [_dense(gm, node, state, what, target)]
    if name in ("batch_norm", "_native_batch_norm_legit_no_training"):
        return [_affine(gm, node, state)]
    if name in ("max_pool2d", "max_pool2d_with_indices", "avg_pool2d") and is_map:
        return [_pool(node, what, target)]
    return _reductions(node, name, is_map, what, target)


def _reductions(node: fx.Node, name: str, is_map: bool, what: str, target: str) -> list[Op]:
    """Global poolings, means over H,W and flattens: a Reduce on a map, nothing on a vector (already reduced)."""
    shape = shape_of(node)
    is_global = len(shape) == 2 or (len(shape) == 4 and shape[2] * shape[3] == 1)
    if name in ("adaptive_avg_pool2d", "_adaptive_avg_pool2d", "adaptive_max_pool2d") and is_global:
        return [Reduce("max" if name == "adaptive_max_pool2d" else "avg")] if is_map else []
    if name in ("mean", "amax") and reduced_dims(node_arg(node, 1, "dim")) == {2, 3} and is_map:
        return [Reduce("avg" if name == "mean" else "max")]
    if name in _FLATTENS and len(shape) == 2 and shape[0] == 1:
        return [Reduce("flatten")] if is_map else []
    raise unsupported(what, target)


def _dense(gm: fx.GraphModule, node: fx.Node, state: HeadWalk, what: str, target: str) -> Dense:
    """aten.linear(x, W, b), aten.addmm(b, x, W.T), aten.mm(x, W.T); a 1x1 convolution of a pooled vector (timm's
    MobileNetV3 conv_head) is a Linear too."""
    name = op_name(node)
    if len(state.shape) != 1:
        raise unsupported(what, target, "a Linear or 1x1 convolution only after the global pooling or flatten")
    if name == "conv2d":
        kernel = _conv1x1_kernel(gm, node, what, target)
        bias = _value(gm, node_arg(node, 2, "bias"))
    elif name == "linear":
        kernel = _numpy(_value(gm, node.args[1])).T
        bias = _value(gm, node_arg(node, 2, "bias"))
    else:  # addmm(bias, x, W.T) or mm(x, W.T): the weight already transposed
        kernel = _numpy(_value(gm, node.args[2] if name == "addmm" else node.args[1]))
        bias = _value(gm, node.args[0]) if name == "addmm" else None
    kernel = kernel.astype(np.float32)  # (n_in, n_out)
    bias_array = _numpy(bias) if bias is not None else np.zeros(kernel.shape[1])
    return Dense(permuted(np.ascontiguousarray(kernel), state), bias_array.astype(np.float32).reshape(-1))


def _conv1x1_kernel(gm: fx.GraphModule, node: fx.Node, what: str, target: str) -> Any:
    weight = _numpy(_value(gm, node.args[1]))  # (out, in, kh, kw)
    stride, padding, dilation, groups = (node_arg(node, i, n) for i, n in enumerate(("stride", "padding", "dilation",
                                                                                "groups"), start=3))
    plain = all(v is None or set(v) <= {1} for v in (stride, dilation)) and (padding is None or set(padding) <= {0})
    if weight.shape[2:] != (1, 1) or not plain or groups not in (None, 1):
        raise unsupported(what, target, "a convolution after the global pooling only as an ungrouped 1x1 "
                                         "convolution without stride, padding or dilation")
    return weight[:, :, 0, 0].T


def _affine(gm: fx.GraphModule, node: fx.Node, state: HeadWalk) -> Affine:
    """Inference BatchNorm: batch_norm(x, w, b, mean, var, training, momentum, eps, cudnn) or
    _native_batch_norm_legit_no_training(x, w, b, mean, var, momentum, eps)."""
    weight, bias, mean, var = (_value(gm, a) for a in node.args[1:5])
    eps = float(node.args[7] if op_name(node) == "batch_norm" else node.args[6])  # type: ignore[arg-type]
    mean64, var64 = _numpy(mean).astype(np.float64), _numpy(var).astype(np.float64)
    gamma = _numpy(weight).astype(np.float64) if weight is not None else np.ones_like(mean64)
    beta = _numpy(bias).astype(np.float64) if bias is not None else np.zeros_like(mean64)
    scale = gamma / np.sqrt(var64 + eps)  # y = (x - mean) * scale + beta
    offset = beta - mean64 * scale
    return Affine(permuted(scale.astype(np.float32), state), permuted(offset.astype(np.float32), state))


def _pool(node: fx.Node, what: str, target: str) -> Pool2D:
    """max_pool2d(x, kernel, stride, padding, dilation, ceil_mode); avg_pool2d(x, kernel, stride, padding, ceil_mode,
    count_include_pad, divisor_override): only without padding, dilation or ceil_mode, as for the modules."""
    is_max = op_name(node).startswith("max")
    kernel = _pair(node.args[1])
    stride = _pair(node_arg(node, 2, "stride") or kernel)
    padding = _pair(node_arg(node, 3, "padding") or 0)
    ceil = node_arg(node, 5 if is_max else 4, "ceil_mode")
    dilation = _pair(node_arg(node, 4, "dilation") or 1) if is_max else (1, 1)
    if padding != (0, 0) or ceil or dilation != (1, 1):
        raise unsupported(what, target, "only pooling without padding, dilation or ceil_mode")
    return Pool2D("max" if is_max else "avg", kernel, stride, "valid")


def _pair(value: Any) -> tuple[int, int]:
    values = [int(v) for v in value] if isinstance(value, list | tuple) else [int(value)]
    return (values[0], values[-1])


def _value(gm: fx.GraphModule, arg: Any) -> Any:
    """A weight (get_attr) or an op on weights only (a transpose), evaluated; other values as they are."""
    if not isinstance(arg, fx.Node):
        return arg
    if arg.op == "get_attr":
        value: Any = gm
        for part in str(arg.target).split("."):
            value = getattr(value, part)
        return value
    if arg.op == "call_function":
        args = fx.node.map_arg(arg.args, lambda n: _value(gm, n))
        kwargs = fx.node.map_arg(arg.kwargs, lambda n: _value(gm, n))
        with torch.no_grad():
            return arg.target(*args, **kwargs)  # type: ignore[operator]
    raise HeadOpError(f"cannot read the constant {arg.name!r} of the head")


def _numpy(value: Any) -> Any:
    return value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)



