"""The PyTorch reference for a `.pt2` program (torch.export.save): torch autograd Grad-CAM on the program itself.

A program unlifted to a GraphModule has no submodules to hook: the module each ATen op came from survives only in
its nn_module_stack. The bundle's target is found as the export found it (tools/export/torch/pt2_graph.py), and an
identity module is put on its output, so that the reference (and pytorch-grad-cam) can hook a module as for any
nn.Module. torch refuses eval() on an exported program (it was exported in the mode it runs in); the reference and
pytorch-grad-cam both call it, so here it returns the program unchanged.
"""

from __future__ import annotations

from pathlib import Path

from torch import fx, nn

from edge.explain import bundle as bundle_format
from tools.export.torch import pt2_front_end, pt2_graph
from tools.verify.tolerance import Tolerances
from tools.verify.torch_reference import TorchGradCamReference

TARGET = "edge_target"  # the identity module on the target's output
_CONVOLUTIONS = ("conv2d", "convolution")


def hooked_program(path: Path, target: str, size: tuple[int, int]) -> tuple[fx.GraphModule, fx.Node]:
    """The program with an identity module TARGET on `target`'s output (all its users read it from there), and the
    target's node."""
    gm, _ = pt2_front_end.program(path, size)
    node = pt2_graph.split(gm, target).target_node
    gm.add_submodule(TARGET, nn.Identity())
    with gm.graph.inserting_after(node):
        hooked = gm.graph.call_module(TARGET, (node,))
    node.replace_all_uses_with(hooked, delete_user_cb=lambda user: user is not hooked)
    gm.recompile()
    gm.eval = lambda: gm  # type: ignore[method-assign]  # see the module's docstring
    return gm, node


def fan_in(node: fx.Node) -> int:
    """The number of products each output of a convolution or linear ATen op sums (0 for other nodes)."""
    name = pt2_graph.op_name(node)
    if name not in (*_CONVOLUTIONS, "linear") or len(node.args) < 2 or not isinstance(node.args[1], fx.Node):
        return 0
    weight = pt2_graph.shape_of(node.args[1])  # conv (out, in / groups, kh, kw); linear (out, in)
    product = 1
    for size in weight[1:]:
        product *= size
    return product


def reference(path: Path, manifest: bundle_format.Manifest,
              user_tolerance: float) -> tuple[TorchGradCamReference, Tolerances]:
    """The program's Grad-CAM at the bundle's target, and tools/verify/tolerance.py's float32 tolerances: the
    convolutions and linear ops before the target are the feature model's, those after it the head's."""
    gm, target = hooked_program(path, manifest.target_layer, manifest.input_shape[:2])
    features: list[int] = []
    head: list[int] = []
    seen = False
    for node in gm.graph.nodes:
        if node is target:
            seen = True
        elif fan := fan_in(node):
            (head if seen else features).append(fan)
    tol = Tolerances(len(features), sum(features), sum(head), manifest.head_dtype, user_tolerance)
    return TorchGradCamReference(gm, TARGET), tol
