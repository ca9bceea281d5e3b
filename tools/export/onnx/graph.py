"""The ONNX graph as the front end reads it, at its own opset: tensor shapes (onnx shape inference at a static input
size), constants, the default target and the split at a target tensor into the nodes before it and the head's nodes
after it. (tools/export/onnx/opset.py makes the copy onnx2torch converts.)"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import onnx
from numpy.typing import NDArray
from onnx import numpy_helper

from tools.export.onnx import fold
from tools.export.onnx.model_file import OnnxExportError

_LOGGER = logging.getLogger("tools.export")
# Nodes that reduce a feature map to a vector: by default the head starts at their input.
REDUCING = ("GlobalAveragePool", "GlobalMaxPool", "ReduceMean", "ReduceMax", "Flatten", "Reshape")
# Nodes that only compute shapes for a Reshape (x.view(x.size(0), -1) exported without constant folding).
SHAPE_OPS = ("Shape", "Gather", "Unsqueeze", "Concat", "Constant", "Cast", "Squeeze", "Slice")


class OnnxGraphError(OnnxExportError):
    """The graph cannot be split at the asked target."""


@dataclass
class OnnxGraph:
    model: onnx.ModelProto  # with static input dims and inferred value shapes
    input_name: str
    input_size: tuple[int, int]  # (h, w) of the (1, 3, h, w) NCHW input
    shapes: dict[str, tuple[int, ...]]  # tensor -> shape, where shape inference found it
    constants: dict[str, NDArray[Any]]  # initializers and Constant node outputs
    producer: dict[str, onnx.NodeProto]  # tensor -> the node that computes it

    def node_of(self, tensor: str) -> onnx.NodeProto | None:
        return self.producer.get(tensor)


def read(model: onnx.ModelProto, input_size: tuple[int, int]) -> OnnxGraph:
    """The graph with its one image input made static: (1, 3, h, w), h and w from the graph, else `input_size`."""
    initializer_names = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializer_names]
    if len(inputs) != 1:
        raise OnnxGraphError(f"the model has {len(inputs)} inputs ({', '.join(i.name for i in inputs)}); "
                             "an image classifier has one")
    dims = inputs[0].type.tensor_type.shape.dim
    if len(dims) != 4 or (dims[1].dim_value not in (0, 3)) or (dims[3].dim_value == 3 and dims[1].dim_value != 3):
        shown = tuple(d.dim_value or d.dim_param or "?" for d in dims)
        raise OnnxGraphError(f"input {inputs[0].name!r} has shape {shown}; the front end takes NCHW (N, 3, H, W) "
                             "images, as torch.onnx.export writes them")
    model = onnx.ModelProto.FromString(model.SerializeToString())  # a copy: the caller's model stays as it was
    dims = model.graph.input[[i.name for i in model.graph.input].index(inputs[0].name)].type.tensor_type.shape.dim
    size = _static_size(dims, input_size)
    for dim, value in zip(dims, (1, 3, *size), strict=True):
        dim.Clear()
        dim.dim_value = value
    model = _infer_shapes(model)
    model = fold.fold(model, _shapes(model), _infer_shapes)
    return OnnxGraph(model, inputs[0].name, size, _shapes(model), _constants(model),
                     {out: node for node in model.graph.node for out in node.output})


def _infer_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    try:
        return onnx.shape_inference.infer_shapes(model, strict_mode=False)
    except Exception as e:  # InferenceError and friends: the message's first line names the node
        raise OnnxGraphError(f"ONNX shape inference failed: {type(e).__name__}: {str(e).splitlines()[0]}") from e


def opset_of(model: onnx.ModelProto, default: int = 0) -> int:
    """The model's default-domain opset version."""
    return next((int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx")), default)


def _static_size(dims: Any, fallback: tuple[int, int]) -> tuple[int, int]:
    h, w = dims[2].dim_value, dims[3].dim_value
    if h > 0 and w > 0:
        return (int(h), int(w))
    _LOGGER.info("the ONNX input's height/width are not fixed: using --input-size %dx%d", *fallback)
    return fallback


def _shapes(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    shapes = {}
    for info in [*model.graph.input, *model.graph.value_info, *model.graph.output]:
        dims = info.type.tensor_type.shape.dim
        if info.type.tensor_type.HasField("shape") and all(d.dim_value > 0 for d in dims):
            shapes[info.name] = tuple(int(d.dim_value) for d in dims)
    return shapes


def _constants(model: onnx.ModelProto) -> dict[str, NDArray[Any]]:
    constants = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    constants[node.output[0]] = numpy_helper.to_array(attr.t)
    return constants


def attribute(node: onnx.NodeProto, name: str, default: Any = None) -> Any:
    for attr in node.attribute:
        if attr.name == name:
            return onnx.helper.get_attribute_value(attr)
    return default


def reduced_axes(g: OnnxGraph, node: onnx.NodeProto) -> set[int]:
    """The axes a ReduceMean/ReduceMax reduces (an attribute before opset 18, a constant input since)."""
    axes = attribute(node, "axes")
    if axes is None and len(node.input) > 1 and node.input[1] in g.constants:
        axes = g.constants[node.input[1]].tolist()
    return {int(a) % 4 for a in axes} if axes is not None else {0, 1, 2, 3}


def is_reduction(g: OnnxGraph, node: onnx.NodeProto) -> bool:
    """True for a node that turns a 4-D map into per-channel values or a vector."""
    if node.op_type not in REDUCING or len(g.shapes.get(node.input[0], ())) != 4:
        return False
    if node.op_type in ("ReduceMean", "ReduceMax"):
        return reduced_axes(g, node) == {2, 3}
    if node.op_type == "Reshape":
        return len(g.shapes.get(node.output[0], ())) == 2
    return True


def default_target(g: OnnxGraph) -> str:
    """The input tensor of the first global pooling, mean over H,W, Flatten or Reshape to a vector after which no
    spatial map is computed (a squeeze-and-excitation block's pooling inside the features is not the head's)."""
    nodes = list(g.model.graph.node)
    for i, node in enumerate(nodes):
        if is_reduction(g, node) and not any(_is_spatial(g.shapes.get(out, ())) for n in nodes[i + 1 :]
                                               for out in n.output):
            if node.input[0] == g.input_name:
                break
            return str(node.input[0])
    raise OnnxGraphError("no global pooling, mean over H,W or Flatten found to start the head; name --target-layer")


def _is_spatial(shape: tuple[int, ...]) -> bool:
    return len(shape) == 4 and shape[2] * shape[3] > 1


def resolve_target(g: OnnxGraph, target: str | None) -> str:
    """The target tensor for a tensor name, a node name (its first output) or None (the default)."""
    if target is None:
        return default_target(g)
    if target in g.producer:
        return target
    named = [node for node in g.model.graph.node if node.name == target]
    if named:
        return str(named[0].output[0])
    raise OnnxGraphError(f"target layer {target!r}: no such tensor or node in the ONNX graph (see --list-layers)")


def head_nodes(g: OnnxGraph, target: str) -> list[onnx.NodeProto]:
    """The nodes between the target tensor and the output that the output depends on, in graph order, checked not
    to read a tensor computed before the target (other than through shape queries)."""
    nodes = list(g.model.graph.node)
    position = nodes.index(g.producer[target])
    needed = {o.name for o in g.model.graph.output}
    for node in reversed(nodes[position + 1 :]):
        if any(out in needed for out in node.output):
            needed.update(node.input)
    head = [n for n in nodes[position + 1 :] if any(out in needed for out in n.output)]
    if target not in needed:
        raise OnnxGraphError(f"the output does not depend on the target {target!r}; choose a tensor on the way "
                             "to the output (see --list-layers)")
    after = {out for n in head for out in n.output} | {target}
    for node in head:
        if node.op_type in SHAPE_OPS:
            continue
        outside = [t for t in node.input if t and t not in after and t not in g.constants]
        if outside:
            raise OnnxGraphError(f"the head reads {outside[0]!r}, which comes before the target {target!r} "
                                 "(a skip connection around it?); choose a later target")
    return head
