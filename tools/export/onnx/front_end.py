"""ONNX model -> FrontEndModel: read the graph, split it at a target tensor, the head from the ONNX nodes after it,
and the nodes before it through onnx2torch (an fx GraphModule) to the PyTorch front end's litert-torch conversion
(NHWC input and output)."""

from __future__ import annotations

import datetime as dt
from importlib import metadata
from pathlib import Path
from typing import Any

import onnx
import onnx2torch
import torch
from torch import fx

from edge.explain.bundle_check import sha256_file
from edge.explain.head import Head
from tools.export import layer_list
from tools.export.front_end import ExportOptions, FrontEndModel
from tools.export.onnx import graph, head_ops, model_file, opset, static_torch
from tools.export.onnx.graph import OnnxGraph, OnnxGraphError
from tools.export.torch import family
from tools.export.torch import front_end as torch_front_end
from tools.export.torch import graph as torch_graph


def load(model: str, weights: Path | None, options: ExportOptions) -> FrontEndModel:
    family.refuse_weights_and_quantize("an .onnx model", weights, options)
    path = Path(model)
    g = graph.read(model_file.load(path), options.input_size)
    tensor, head, feature_shape, head_names = split_and_head(g, options.target_layer)
    features = feature_module(to_torch(g), tensor)
    return FrontEndModel(
        tflite=torch_front_end.convert_features(features, g.input_size),
        head=head,
        input_shape=(g.input_size[0], g.input_size[1], 3),
        feature_shape=feature_shape,
        target=tensor,
        head_layers=tuple(head_names),
        flops=family.flops(features, g.input_size),
        source=_source(path, g.model),
        preprocess=family.preprocess(options, 3),
    )


def split_and_head(g: OnnxGraph, target: str | None) -> tuple[str, Head, tuple[int, int, int], list[str]]:
    """The target tensor, the checked head after it, the target's shape (h, w, k) and the head's node names."""
    tensor = graph.resolve_target(g, target)
    head, feature_shape, names = family.head_at(
        tensor, g.shapes.get(tensor), lambda fs: head_ops.convert(g, graph.head_nodes(g, tensor), fs, tensor),
        OnnxGraphError, head_ops.OnnxHeadOpError)
    return tensor, head, feature_shape, names


def to_torch(g: OnnxGraph) -> fx.GraphModule:
    """The whole graph as an fx GraphModule, each ONNX node one module that knows its tensors (onnx_mapping)."""
    model = opset.for_torch(g.model)  # a OnnxGraphError of its own where the down-conversion fails
    try:
        return static_torch.bake(onnx2torch.convert(model, attach_onnx_mapping=True), g)
    except Exception as e:  # onnx2torch raises NotImplementedError for ops it has no converter for, and others
        raise OnnxGraphError(f"onnx2torch cannot convert the graph: {type(e).__name__}: "
                             f"{str(e).splitlines()[0] if str(e) else ''}") from e


def module_for(gm: fx.GraphModule, tensor: str) -> fx.Node:
    """The fx node of the ONNX node whose (only) output is `tensor`."""
    for node in gm.graph.nodes:
        if node.op == "call_module":
            module: Any = gm.get_submodule(str(node.target))
            outputs = tuple(module.onnx_mapping.outputs)
            if tensor in outputs:
                if len(outputs) > 1:
                    raise OnnxGraphError(f"target {tensor!r} is one of several outputs of its node; choose another")
                return node
    raise OnnxGraphError(f"target {tensor!r} has no node in the converted graph")


def feature_module(gm: fx.GraphModule, tensor: str) -> fx.GraphModule:
    """input -> the target tensor, NCHW, as an fx module of its own."""
    node = module_for(gm, tensor)
    return torch_graph.feature_module(torch_graph.Split(gm, str(node.target), node, []))


def _source(path: Path, model: onnx.ModelProto) -> dict[str, str]:
    return {"model": path.name, "model_sha256": sha256_file(path),
            "onnx_producer": f"{model.producer_name} {model.producer_version}".strip(),
            "onnx_opset": str(graph.opset_of(model)),
            "onnx": onnx.__version__, "onnx2torch": metadata.version("onnx2torch"), "torch": torch.__version__,
            "litert_torch": metadata.version("litert-torch"),
            "exported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}


def list_layers(model: str, weights: Path | None, input_size: tuple[int, int], show_all: bool = False) -> list[str]:
    """Every node with a 4-D output as a target candidate (its output tensor's name, which --target-layer takes), in
    tools/export/layer_list.py's format."""
    g = graph.read(model_file.load(Path(model)), input_size)
    try:
        default: str | None = graph.default_target(g)
    except OnnxGraphError:
        default = None
    found = []
    for node in g.model.graph.node:
        shape: Any = g.shapes.get(node.output[0])
        if shape is None or len(shape) != 4 or node.op_type in graph.SHAPE_OPS:
            continue
        reason = None
        try:
            split_and_head(g, node.output[0])
        except model_file.OnnxExportError as e:
            reason = str(e).split(" (supported:")[0]
        found.append(layer_list.Candidate(node.output[0], node.op_type, (shape[2], shape[3], shape[1]), reason))
    return layer_list.summarise(found, default, show_all)
