"""Trace an nn.Module with torch.fx and split it at the target: the feature module (input -> A) and the head nodes.

Tracing, not reading the module tree, puts the functional calls of `forward` into the head (DenseNet's F.relu before
its pooling, ShuffleNet's x.mean([2, 3]), torch.flatten). The tracer keeps the target module and every module outside
the target's ancestors as single calls (leaves), so that the target is one node and the head's Sequentials stay whole.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any

import torch
from torch import fx, nn

from tools.export.torch.model_spec import TorchExportError


class GraphError(TorchExportError):
    """The model cannot be traced or split at the asked target."""


# Nodes that reduce a feature map to a vector: the head starts at their input (by default).
_REDUCING_MODULES = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Flatten)
_REDUCING_FUNCTIONS = {torch.flatten, nn.functional.adaptive_avg_pool2d, nn.functional.adaptive_max_pool2d,
                       torch.mean, nn.functional.avg_pool2d}
_REDUCING_METHODS = {"mean", "flatten", "view", "reshape", "amax"}
# Element-wise ops that may sit between the default target module and the reduction (DenseNet's F.relu).
_ELEMENTWISE_MODULES = (nn.ReLU, nn.ReLU6, nn.Dropout, nn.Identity)
_ELEMENTWISE_FUNCTIONS = {nn.functional.relu, torch.relu, nn.functional.relu6, nn.functional.dropout}
# timm's pooling and classifier wrappers: traced through, so that their pool / flatten / fc calls are head ops of their
# own, as torchvision's are (and SelectAdaptivePool2d's pooling starts the head for the default target).
_TRACED_THROUGH = {"SelectAdaptivePool2d", "ClassifierHead", "NormMlpClassifierHead", "FastAdaptiveAvgPool",
                   "FastAdaptiveMaxPool"}


@dataclass
class Split:
    graph_module: fx.GraphModule  # the whole model, traced with the target as one node
    target: str  # module name (model.named_modules()) or fx node name
    target_node: fx.Node
    head_nodes: list[fx.Node]  # the nodes after the target on its way to the output, in order


class _Tracer(fx.Tracer):  # type: ignore[misc,unused-ignore]  # (torch is untyped where it is not installed)
    def __init__(self, target: str | None) -> None:
        super().__init__()
        self.target = target

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        if type(m).__name__ in _TRACED_THROUGH and type(m).__module__.startswith("timm."):
            return False
        # An ancestor of the target is traced through, so that the target is a node of its own.
        return self.target is None or not self.target.startswith(module_qualified_name + ".")


def trace(model: nn.Module, target: str | None = None) -> fx.GraphModule:
    try:
        graph = _Tracer(target).trace(model)
    except Exception as e:  # fx raises TraceError, TypeError, NotImplementedError... on data-dependent forwards
        raise GraphError(f"torch.fx cannot trace {type(model).__name__}: {type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''}") from e
    return fx.GraphModule(model, graph, type(model).__name__)


def split(model: nn.Module, target: str | None) -> Split:
    """Trace and split at `target` (a module name or node name; None: the default target)."""
    if target is None:
        target = default_target(model)
    modules = dict(model.named_modules())
    gm = trace(model, target if target in modules else None)
    node = _find(gm, target, modules)
    return Split(gm, target, node, _nodes_after(gm, node))


def default_target(model: nn.Module) -> str:
    """The module whose output (through element-wise ops only) feeds the first global pooling or flatten."""
    gm = trace(model)
    for node in gm.graph.nodes:
        if _is_reduction(gm, node):
            source = _input(node)
            while source is not None and _is_elementwise(gm, source):
                source = _input(source)
            if source is None or source.op == "placeholder":
                break
            return str(source.target) if source.op == "call_module" else source.name
    raise GraphError("no global pooling, mean over H,W or flatten found to start the head; name --target-layer")


def _find(gm: fx.GraphModule, target: str, modules: dict[str, nn.Module]) -> fx.Node:
    calls = [n for n in gm.graph.nodes if n.op == "call_module" and n.target == target]
    if len(calls) > 1:
        raise GraphError(f"module {target!r} is called {len(calls)} times in forward; name a node instead "
                         "(see --list-layers)")
    if calls:
        return calls[0]
    named = [n for n in gm.graph.nodes if n.name == target and n.op != "output"]
    if named:
        return named[0]
    hint = "it is not called in forward" if target in modules else "no such module or node"
    raise GraphError(f"target layer {target!r}: {hint} (see --list-layers)")


def _nodes_after(gm: fx.GraphModule, target: fx.Node) -> list[fx.Node]:
    """The nodes between the target and the output that the output depends on, checked to form one chain."""
    order = list(gm.graph.nodes)
    output = order[-1]
    needed = {output}
    for node in reversed(order):
        if node in needed:
            needed.update(n for n in node.all_input_nodes)
    head = [n for n in order[order.index(target) + 1 :] if n in needed and n.op != "output"]
    before = set(order[: order.index(target) + 1])
    for node in head:
        outside = [n for n in node.all_input_nodes if n in before and n is not target and not _is_constant(n)]
        if outside:
            raise GraphError(f"the head reads {outside[0].name!r}, which comes before the target {target.name!r} "
                             "(a skip connection around it?); choose a later target")
    return head


def _is_constant(node: fx.Node) -> bool:
    """Shape queries (x.size(0)) read an earlier tensor without depending on its values."""
    if node.op == "call_method":
        return node.target == "size"
    first = node.args[0] if node.args else None
    return node.op == "call_function" and node.target is operator.getitem and isinstance(first, fx.Node) and \
        _is_constant(first)


def _input(node: fx.Node) -> fx.Node | None:
    first = node.args[0] if node.args else None
    return first if isinstance(first, fx.Node) else None


def _is_reduction(gm: fx.GraphModule, node: fx.Node) -> bool:
    if node.op == "call_module":
        return isinstance(gm.get_submodule(str(node.target)), _REDUCING_MODULES)
    if node.op == "call_function":
        return node.target in _REDUCING_FUNCTIONS
    return node.op == "call_method" and node.target in _REDUCING_METHODS


def _is_elementwise(gm: fx.GraphModule, node: fx.Node) -> bool:
    if node.op == "call_module":
        return isinstance(gm.get_submodule(str(node.target)), _ELEMENTWISE_MODULES)
    return node.op == "call_function" and node.target in _ELEMENTWISE_FUNCTIONS


def feature_module(split_: Split) -> fx.GraphModule:
    """input -> the target's output, as a module of its own (what goes to TFLite)."""
    graph = fx.Graph()
    env: dict[fx.Node, fx.Node] = {}
    for node in split_.graph_module.graph.nodes:
        env[node] = graph.node_copy(node, lambda n: env[n])
        if node is split_.target_node:
            break
    graph.output(env[split_.target_node])
    features = fx.GraphModule(split_.graph_module, graph, "features")
    features.graph.eliminate_dead_code()
    features.recompile()
    return features


def describe(node: fx.Node, gm: fx.GraphModule) -> str:
    """How a node reads in messages: its module name and class, or its function."""
    if node.op == "call_module":
        return f"{node.target} ({type(gm.get_submodule(str(node.target))).__name__})"
    if node.op == "call_method":
        return f"{node.name} (Tensor.{node.target})"
    return f"{node.name} ({getattr(node.target, '__name__', node.target)})"


def node_module(node: fx.Node, gm: fx.GraphModule) -> Any:
    return gm.get_submodule(str(node.target)) if node.op == "call_module" else None
