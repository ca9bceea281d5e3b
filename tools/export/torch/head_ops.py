"""The traced nodes after the target -> the edge NumPy head's ops (tools/export/head_passes.py finishes them).

The walk over the head (shapes, and the NCHW flatten's permutation of what reads it) is tools/export/head_walk.py's,
shared with the ONNX front end.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import fx, nn

from edge.explain.head_ops import Activation, Affine, Dense, Op, Pool2D, Reduce
from tools.export.head_walk import HeadWalk, batchnorm_affine, unsupported_message
from tools.export.torch.graph import describe
from tools.export.torch.model_spec import TorchExportError

F = nn.functional
SUPPORTED = ("global/adaptive average and max pooling, mean over H,W, MaxPool2d/AvgPool2d without padding, flatten/"
             "view, Linear, ReLU, ReLU6, Hardswish, Hardsigmoid, SiLU, GELU (exact), Sigmoid, Softmax, Dropout, "
             "Identity, BatchNorm1d/2d")
_ACTIVATION_MODULES: dict[type[nn.Module], str] = {
    nn.ReLU: "relu", nn.ReLU6: "relu6", nn.Sigmoid: "sigmoid", nn.Hardswish: "hardswish",
    nn.Hardsigmoid: "hardsigmoid", nn.SiLU: "silu"}
_ACTIVATION_FUNCTIONS = {F.relu: "relu", torch.relu: "relu", torch.relu_: "relu", F.relu6: "relu6",
                         torch.sigmoid: "sigmoid", F.sigmoid: "sigmoid", F.hardswish: "hardswish",
                         F.hardsigmoid: "hardsigmoid", F.silu: "silu"}
_ACTIVATION_METHODS = {"relu": "relu", "relu_": "relu", "sigmoid": "sigmoid"}
_IDENTITY_MODULES = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout, nn.Identity)


class HeadOpError(TorchExportError):
    """An op after the target that the NumPy head cannot run."""




def convert(gm: fx.GraphModule, head_nodes: list[fx.Node], feature_shape: tuple[int, int, int],
            target: str) -> tuple[list[Op], list[str]]:
    """Edge ops for the head nodes, and the names of the modules/functions they came from."""
    state = HeadWalk(feature_shape)
    for node in head_nodes:
        if node.op == "call_module":
            module = gm.get_submodule(str(node.target))
            for name, leaf in _leaves(str(node.target), module):
                add_ops(state, _module_ops(leaf, state, f"{name} ({type(leaf).__name__})", target), name)
        elif _is_shape_query(node):
            continue
        else:
            add_ops(state, _function_ops(node, state, describe(node, gm), target), node.name)
    return state.ops, state.names


def _leaves(name: str, module: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """A Sequential runs its children in order; anything else is one op."""
    if isinstance(module, nn.Sequential):
        for child_name, child in module.named_children():
            yield from _leaves(f"{name}.{child_name}", child)
    else:
        yield name, module


def add_ops(state: HeadWalk, ops: list[Op], name: str) -> None:
    state.add(ops, name)


def unsupported(what: str, target: str, why: str = "") -> HeadOpError:
    return HeadOpError(unsupported_message(what, target, SUPPORTED, why))


def _module_ops(m: nn.Module, state: HeadWalk, what: str, target: str) -> list[Op]:
    is_map = state.is_map
    if isinstance(m, _IDENTITY_MODULES):
        return []
    for kind, name in _ACTIVATION_MODULES.items():
        if isinstance(m, kind):
            return [Activation(name)]
    if isinstance(m, nn.GELU):
        return [gelu(m.approximate, what, target)]
    if isinstance(m, nn.Hardtanh) and (m.min_val, m.max_val) == (0.0, 6.0):
        return [Activation("relu6")]
    if isinstance(m, nn.Softmax) and not is_map and m.dim in (None, 1, -1):
        return [Activation("softmax")]
    if isinstance(m, nn.AdaptiveAvgPool2d | nn.AdaptiveMaxPool2d) and _is_global(m.output_size):
        return [Reduce("avg" if isinstance(m, nn.AdaptiveAvgPool2d) else "max")] if is_map else []
    if isinstance(m, nn.MaxPool2d | nn.AvgPool2d) and is_map:
        return [_pool(m, what, target)]
    if isinstance(m, nn.Flatten) and m.start_dim == 1 and m.end_dim == -1:
        return [Reduce("flatten")] if is_map else []
    if isinstance(m, nn.Linear) and not is_map:
        kernel = m.weight.detach().numpy().T.astype(np.float32)  # (n_in, n_out)
        bias = m.bias.detach().numpy() if m.bias is not None else np.zeros(kernel.shape[1])
        return [Dense(permuted(kernel, state), bias.astype(np.float32))]
    if isinstance(m, nn.Conv2d) and not is_map:  # of a pooled (1, c, 1, 1) vector: timm MobileNetV3's conv_head
        return [_pointwise_conv(m, state, what, target)]
    if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d) and len(state.shape) == (3 if isinstance(m, nn.BatchNorm2d)
                                                                               else 1):
        return [_batchnorm(m, state)]
    return _raise(unsupported(what, target))


def _pointwise_conv(m: nn.Conv2d, state: HeadWalk, what: str, target: str) -> Dense:
    plain = (m.kernel_size, m.stride, m.dilation, m.groups) == ((1, 1), (1, 1), (1, 1), 1) and m.padding in ((0, 0),
                                                                                                          "valid")
    if not plain:
        raise unsupported(what, target, "a convolution after the global pooling only as an ungrouped 1x1 "
                                         "convolution without stride, padding or dilation")
    kernel = m.weight.detach().numpy()[:, :, 0, 0].T.astype(np.float32)  # (n_in, n_out)
    bias = m.bias.detach().numpy() if m.bias is not None else np.zeros(kernel.shape[1])
    return Dense(permuted(kernel, state), bias.astype(np.float32))


def gelu(approximate: object, what: str, target: str) -> Activation:
    if approximate != "none":
        raise unsupported(what, target, f"only GELU's exact erf form, not approximate={approximate!r}")
    return Activation("gelu")


def _raise(e: HeadOpError) -> list[Op]:
    raise e


def _is_global(size: object) -> bool:
    return size == 1 or size == (1, 1)


def _pool(m: nn.MaxPool2d | nn.AvgPool2d, what: str, target: str) -> Pool2D:
    def pair(v: object) -> tuple[int, int]:
        return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))  # type: ignore[index]

    dilated = isinstance(m, nn.MaxPool2d) and pair(m.dilation) != (1, 1)
    if pair(m.padding) != (0, 0) or m.ceil_mode or dilated:
        raise unsupported(what, target, "only pooling without padding, dilation or ceil_mode")
    stride = m.stride or m.kernel_size
    return Pool2D("max" if isinstance(m, nn.MaxPool2d) else "avg", pair(m.kernel_size), pair(stride), "valid")


def permuted(rows: NDArray[np.float32], state: HeadWalk) -> NDArray[np.float32]:
    return state.permuted(rows)


def _batchnorm(m: nn.BatchNorm1d | nn.BatchNorm2d, state: HeadWalk) -> Affine:
    assert m.running_mean is not None and m.running_var is not None
    mean, var = m.running_mean.detach().double().numpy(), m.running_var.detach().double().numpy()
    gamma = m.weight.detach().double().numpy() if m.weight is not None else np.ones_like(mean)
    beta = m.bias.detach().double().numpy() if m.bias is not None else np.zeros_like(mean)
    return batchnorm_affine(gamma, beta, mean, var, m.eps, state)


def _is_shape_query(node: fx.Node) -> bool:
    return (node.op == "call_method" and node.target == "size") or (
        node.op == "call_function" and node.target is operator.getitem)


def _function_ops(node: fx.Node, state: HeadWalk, what: str, target: str) -> list[Op]:
    """call_function / call_method nodes: the functional spellings of the same ops."""
    is_map = state.is_map
    fn = node.target
    if fn in _ACTIVATION_FUNCTIONS or (node.op == "call_method" and fn in _ACTIVATION_METHODS):
        return [Activation(_ACTIVATION_FUNCTIONS.get(fn) or _ACTIVATION_METHODS[str(fn)])]  # type: ignore[arg-type,unused-ignore]
    if fn is F.gelu:
        return [gelu(node_arg(node, 1, "approximate") or "none", what, target)]
    if fn is F.dropout:
        return []
    is_softmax = fn in (F.softmax, torch.softmax) or (node.op == "call_method" and fn == "softmax")
    if is_softmax and not is_map and node_arg(node, 1, "dim") in (1, -1):
        return [Activation("softmax")]
    if fn in (F.adaptive_avg_pool2d, F.adaptive_max_pool2d) and _is_global(node_arg(node, 1, "output_size")):
        return [Reduce("avg" if fn is F.adaptive_avg_pool2d else "max")] if is_map else []
    if fn in (torch.mean, "mean", torch.amax, "amax") and reduced_dims(node_arg(node, 1, "dim")) == {2, 3}:
        return [Reduce("avg" if fn in (torch.mean, "mean") else "max")] if is_map else _raise(
            unsupported(what, target))
    if (fn in (torch.flatten, "flatten") and node_arg(node, 1, "start_dim") == 1
            and node_arg(node, 2, "end_dim") in (None, -1)):
        return [Reduce("flatten")] if is_map else []
    if fn in ("view", "reshape", torch.reshape) and _out_rank(node) == 2:
        return [Reduce("flatten")] if is_map else []
    return _raise(unsupported(what, target))


def node_arg(node: fx.Node, index: int, name: str) -> Any:
    """A call's argument given by position or by keyword (None if absent): an fx Argument, so untyped."""
    if len(node.args) > index:
        return node.args[index]
    return node.kwargs.get(name)


def reduced_dims(value: object) -> set[int]:
    dims = value if isinstance(value, list | tuple) else [value]
    return {int(d) % 4 for d in dims if isinstance(d, int)}


def _out_rank(node: fx.Node) -> int:
    meta = node.meta.get("tensor_meta")
    return len(meta.shape) if meta is not None else -1
