""".pt2 program (torch.export.save) -> FrontEndModel: the unlifted ATen graph split at a module path from the ops'
nn_module_stack, the head read from the ATen ops after the target (tools/export/torch/aten_head.py), and the nodes up
to the target cut out as a GraphModule for the PyTorch front end's litert-torch conversion (NHWC input and output).
No model code is needed: the program holds the graph and the weights."""

from __future__ import annotations

import datetime as dt
from importlib import metadata
from pathlib import Path

import torch
from torch import fx

from edge.explain.bundle_check import sha256_file
from edge.explain.head import Head
from tools.export import layer_list
from tools.export.front_end import ExportOptions, FrontEndModel
from tools.export.torch import aten_head, family, pt2_file, pt2_graph
from tools.export.torch import front_end as torch_front_end
from tools.export.torch import graph as torch_graph
from tools.export.torch.head_ops import HeadOpError
from tools.export.torch.model_spec import TorchExportError
from tools.export.torch.pt2_graph import AtenSplit, Pt2GraphError


def load(model: str, weights: Path | None, options: ExportOptions) -> FrontEndModel:
    family.refuse_weights_and_quantize("a .pt2 program", weights, options)
    path = Path(model)
    gm, size = program(path, options.input_size)
    split, head, feature_shape, head_names = split_and_head(gm, options.target_layer)
    features = feature_module(split)
    return FrontEndModel(
        tflite=torch_front_end.convert_features(features, size),
        head=head,
        input_shape=(size[0], size[1], 3),
        feature_shape=feature_shape,
        target=split.target,
        head_layers=tuple(head_names),
        flops=family.flops(features, size),
        source=_source(path),
        preprocess=family.preprocess(options, 3),
    )


def program(path: Path, input_size: tuple[int, int]) -> tuple[fx.GraphModule, tuple[int, int]]:
    """The program's unlifted GraphModule with shapes propagated, and its input (h, w): the program's own where it is
    static, else `input_size`."""
    exported = pt2_file.load(path)
    try:
        gm = exported.module()
    except Exception as e:  # unlifting fails on programs torch cannot run as a module (custom ops not loaded...)
        raise Pt2GraphError(f"cannot run the program in {path} as a module: {type(e).__name__}: "
                            f"{str(e).splitlines()[0] if str(e) else ''}") from e
    size = pt2_graph.input_size(gm, input_size)
    pt2_graph.propagate(gm, size)
    return gm, size


def split_and_head(gm: fx.GraphModule, target: str | None) -> tuple[AtenSplit, Head, tuple[int, int, int], list[str]]:
    split = pt2_graph.split(gm, target)
    head, feature_shape, names = family.head_at(
        split.target, pt2_graph.shape_of(split.target_node),
        lambda fs: aten_head.convert(gm, split.head_nodes, fs, split.target), Pt2GraphError, HeadOpError)
    return split, head, feature_shape, names


def feature_module(split: AtenSplit) -> fx.GraphModule:
    """input -> the target's output, NCHW, as a GraphModule of its own (what litert-torch converts)."""
    return torch_graph.feature_module(torch_graph.Split(split.graph_module, split.target, split.target_node, []))


def _source(path: Path) -> dict[str, str]:
    return {"model": path.name, "model_sha256": sha256_file(path), "torch": torch.__version__,
            "litert_torch": metadata.version("litert-torch"),
            "exported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}


def list_layers(model: str, weights: Path | None, input_size: tuple[int, int], show_all: bool = False) -> list[str]:
    """Every module output (the outermost module path of that node) or functional call with a 4-D output as a target
    candidate, with its ATen op, in tools/export/layer_list.py's format."""
    gm, _ = program(Path(model), input_size)
    try:
        default: str | None = pt2_graph.default_target(gm)
    except Pt2GraphError:
        default = None
    last = pt2_graph.last_nodes(gm)
    found = []
    for node in gm.graph.nodes:
        shape = pt2_graph.shape_of(node)
        name = pt2_graph.name_of(node, last)
        inside = name == node.name and pt2_graph.module_paths(node)  # an op within a module, not its output
        if node.op != "call_function" or len(shape) != 4 or inside:
            continue
        reason = None
        try:
            split_and_head(gm, name)
        except TorchExportError as e:
            reason = str(e).split(" (supported:")[0]
        op = str(node.target).removeprefix("aten.")
        found.append(layer_list.Candidate(name, op, (shape[2], shape[3], shape[1]), reason))
    return layer_list.summarise(found, default, show_all)
