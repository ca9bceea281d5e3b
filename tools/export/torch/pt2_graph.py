"""A `.pt2` program's ATen graph split at a module path: the nodes up to the target and the head's nodes after it.

`torch.export.load(path).module()` is a GraphModule of ATen ops (aten.conv2d, aten.linear, aten.hardswish_, ...) with
the weights as get_attr nodes; the module an op came from survives only in its `meta["nn_module_stack"]` (outermost
first: path and class). A module's output is therefore the LAST node whose stack contains that module's path.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any

import torch
from torch import fx
from torch.fx.passes.shape_prop import ShapeProp

from tools.export.torch.pt2_file import Pt2ModelError

# Ops that reduce a feature map to per-channel values or a vector: by default the head starts at their input.
_REDUCING = {"adaptive_avg_pool2d", "_adaptive_avg_pool2d", "adaptive_max_pool2d", "mean", "amax", "flatten", "view",
             "_unsafe_view", "reshape"}
# Element-wise ops that may sit between the default target and the reduction in forward (DenseNet's F.relu).
_ELEMENTWISE = {"relu", "relu_", "hardtanh", "hardtanh_", "dropout", "dropout_", "clone", "alias", "detach"}


class Pt2GraphError(Pt2ModelError):
    """The program cannot be run at the input size or split at the asked target."""


@dataclass
class AtenSplit:
    graph_module: fx.GraphModule  # the whole program, unlifted (weights as attributes), shapes propagated
    target: str  # a module path as in named_modules(), or a node name
    target_node: fx.Node  # the last node of the target module
    head_nodes: list[fx.Node]  # the nodes after the target that carry its values to the output, in order


def op_name(node: fx.Node) -> str:
    """The ATen op's name without namespace and overload: 'linear' for aten.linear.default, '' for non-ops."""
    if node.op != "call_function":
        return ""
    if node.target is operator.getitem:  # the first result of an op returning a tuple (BatchNorm, max pooling)
        return "getitem"
    return str(getattr(getattr(node.target, "overloadpacket", None), "__name__", ""))


def module_paths(node: fx.Node) -> list[str]:
    """The module paths of the node's nn_module_stack, outermost first, without the root ('')."""
    stack: dict[str, Any] = node.meta.get("nn_module_stack") or {}
    return [str(value[0]) for value in stack.values() if value[0]]


def input_size(gm: fx.GraphModule, fallback: tuple[int, int]) -> tuple[int, int]:
    """(h, w) of the one NCHW image input: from the program where it is static, else `fallback` (--input-size)."""
    inputs = [n for n in gm.graph.nodes if n.op == "placeholder"]
    if len(inputs) != 1:
        raise Pt2GraphError(f"the program has {len(inputs)} inputs; an image classifier has one")
    shape = tuple(getattr(inputs[0].meta.get("val"), "shape", ()))
    if len(shape) != 4 or (isinstance(shape[1], int) and shape[1] != 3):
        raise Pt2GraphError(f"input {inputs[0].name!r} has shape {shape}; the front end takes NCHW (N, 3, H, W) "
                            "images")
    h, w = shape[2], shape[3]
    return (h, w) if isinstance(h, int) and isinstance(w, int) else fallback


def propagate(gm: fx.GraphModule, size: tuple[int, int]) -> None:
    """Concrete shapes (meta["tensor_meta"]) for every node at a (1, 3, h, w) input."""
    with torch.no_grad():
        try:
            ShapeProp(gm).propagate(torch.zeros(1, 3, *size))
        except Exception as e:  # the program's own guards or ops at this size
            raise Pt2GraphError(f"the program does not run on a (1, 3, {size[0]}, {size[1]}) input: "
                                f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from e


def shape_of(node: fx.Node) -> tuple[int, ...]:
    meta = node.meta.get("tensor_meta")
    return tuple(int(v) for v in getattr(meta, "shape", ()))


def split(gm: fx.GraphModule, target: str | None) -> AtenSplit:
    """Split at `target` (a module path or node name; None: the default target)."""
    target = target or default_target(gm)
    node = find(gm, target)
    return AtenSplit(gm, target, node, head_nodes(gm, node, target))


def last_nodes(gm: fx.GraphModule) -> dict[str, fx.Node]:
    """Each module path -> the last node computed inside it (the module's output), in graph order."""
    last: dict[str, fx.Node] = {}
    for node in gm.graph.nodes:
        for path in module_paths(node):
            last.pop(path, None)  # re-inserted: the dict's order follows the modules' last nodes
            last[path] = node
    return last


def name_of(node: fx.Node, last: dict[str, fx.Node]) -> str:
    """The outermost module whose output `node` is, else the node's own name (a functional call in forward)."""
    return next((path for path in module_paths(node) if last.get(path) is node), node.name)


def find(gm: fx.GraphModule, target: str) -> fx.Node:
    node = last_nodes(gm).get(target)
    if node is not None:
        return node
    named = [n for n in gm.graph.nodes if n.name == target and n.op == "call_function"]
    if named:
        return named[0]
    raise Pt2GraphError(f"target layer {target!r}: no module path or node of that name in the program "
                        "(see --list-layers)")


def default_target(gm: fx.GraphModule) -> str:
    """The module whose output (through element-wise functional calls only) feeds the first reduction after which no
    spatial map is computed (a squeeze-and-excitation block's pooling inside the features is not the head's)."""
    nodes = [n for n in gm.graph.nodes if n.op == "call_function"]
    last = last_nodes(gm)
    for i, node in enumerate(nodes):
        if not _is_reduction(node) or any(_is_spatial(shape_of(n)) for n in nodes[i + 1 :]):
            continue
        source = _input(node)
        while source is not None and op_name(source) in _ELEMENTWISE and name_of(source, last) == source.name:
            source = _input(source)
        if source is None or source.op != "call_function":
            break
        return name_of(source, last)
    raise Pt2GraphError("no global pooling, mean over H,W or flatten found to start the head; name --target-layer")


def head_nodes(gm: fx.GraphModule, target: fx.Node, name: str) -> list[fx.Node]:
    """The nodes after the target that depend on it and that the output needs, checked to read nothing else computed
    before the target (weights and shape queries aside)."""
    order = list(gm.graph.nodes)
    outputs = _output_nodes(order[-1])
    if len(outputs) != 1:
        raise Pt2GraphError(f"the program returns {len(outputs)} tensors; a classifier returns one (its logits)")
    needed = set(outputs)
    for node in reversed(order):
        if node in needed:
            needed.update(node.all_input_nodes)
    if target not in needed:
        raise Pt2GraphError(f"the output does not depend on the target {name!r}; choose a module on the way "
                            "to the output (see --list-layers)")
    carried = {target}
    head = []
    for node in order[order.index(target) + 1 : -1]:
        if node in needed and any(n in carried for n in node.all_input_nodes):
            carried.add(node)
            head.append(node)
    for node in head:
        outside = [n for n in node.all_input_nodes if n not in carried and not is_constant(n)]
        if outside:
            raise Pt2GraphError(f"the head reads {outside[0].name!r}, which comes before the target {name!r} "
                                "(a skip connection around it?); choose a later target")
    return head


def _output_nodes(output: fx.Node) -> list[fx.Node]:
    found: list[fx.Node] = []
    fx.node.map_arg(output.args, found.append)
    return found


def is_constant(node: fx.Node) -> bool:
    """Weights, ops on weights only (a decomposed Linear's transpose) and shape queries."""
    if node.op == "get_attr" or op_name(node) == "sym_size":
        return True
    return node.op == "call_function" and all(is_constant(n) for n in node.all_input_nodes)


def _input(node: fx.Node) -> fx.Node | None:
    first = node.args[0] if node.args else None
    return first if isinstance(first, fx.Node) else None


def _is_reduction(node: fx.Node) -> bool:
    source = _input(node)
    if op_name(node) not in _REDUCING or source is None or not _is_spatial(shape_of(source)):
        return False
    out = shape_of(node)
    return len(out) == 2 or (len(out) == 4 and out[2] * out[3] == 1)


def _is_spatial(shape: tuple[int, ...]) -> bool:
    """A 4-D map with more than one position. Two non-batch dimensions above 1, so that a pooled vector permuted to
    NHWC, (1, 1, 1, c), is no map (ConvNeXt's head permutes for its LayerNorm)."""
    return len(shape) == 4 and sum(d > 1 for d in shape[1:]) >= 2
