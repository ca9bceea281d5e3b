"""PyTorch model (`module:callable`, weights a state_dict) -> FrontEndModel: trace, split at the target, head ops,
features to TFLite with NHWC input/output."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from edge.explain.bundle_check import sha256_file
from edge.explain.head import Head
from tools.export import layer_list
from tools.export.front_end import ExportError, ExportOptions, FrontEndModel
from tools.export.torch import family, graph, head_ops, model_spec
from tools.export.torch.model_spec import TorchExportError


class FeatureConvertError(TorchExportError):
    """litert-torch could not convert the feature module."""


def load(model: str, weights: Path | None, options: ExportOptions) -> FrontEndModel:
    if options.quantize:
        raise ExportError("--quantize int8 is not available for PyTorch models yet; export float features")
    input_size = options.input_size
    net = model_spec.load(model, weights)
    split, head, feature_shape, head_names = _split_and_head(net, options.target_layer, input_size)
    features = graph.feature_module(split)
    return FrontEndModel(
        tflite=convert_features(features, input_size),
        head=head,
        input_shape=(input_size[0], input_size[1], 3),
        feature_shape=feature_shape,
        target=split.target,
        head_layers=tuple(head_names),
        flops=family.flops(features, input_size),
        source=_source(model, weights),
        preprocess=family.preprocess(options, 3),
    )


def _split_and_head(net: nn.Module, target: str | None,
                    input_size: tuple[int, int]) -> tuple[graph.Split, Head, tuple[int, int, int], list[str]]:
    split = graph.split(net, target)
    sample = torch.zeros(1, 3, *input_size)  # NCHW, as the model is traced
    with torch.no_grad():
        try:
            ShapeProp(split.graph_module).propagate(sample)
        except Exception as e:  # the model's own error at this input size
            raise graph.GraphError(f"the model does not run on a (1, 3, {input_size[0]}, {input_size[1]}) input: "
                                   f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from e
    shape = tuple(int(v) for v in split.target_node.meta["tensor_meta"].shape)
    head, feature_shape, names = family.head_at(
        split.target, shape, lambda fs: head_ops.convert(split.graph_module, split.head_nodes, fs, split.target),
        graph.GraphError, head_ops.HeadOpError)
    return split, head, feature_shape, names


def convert_features(features: fx.GraphModule, input_size: tuple[int, int]) -> bytes:
    """The feature module as TFLite taking (1, h, w, 3) NHWC and giving (1, h', w', k), float32."""
    import litert_torch

    nhwc = litert_torch.to_channel_last_io(features, args=[0], outputs=[0])
    sample = (torch.zeros(1, input_size[0], input_size[1], 3),)
    try:
        edge_model = litert_torch.convert(nhwc.eval(), sample)
    except Exception as e:  # the converter's errors have no common base
        raise FeatureConvertError(f"litert-torch could not convert the feature model: {type(e).__name__}: "
                                  f"{str(e).splitlines()[0] if str(e) else ''}") from e
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "features.tflite"
        edge_model.export(str(path))
        return path.read_bytes()


def _source(model: str, weights: Path | None) -> dict[str, str]:
    import litert_torch

    source = {"model": model, "torch": torch.__version__, "litert_torch": getattr(litert_torch, "__version__", "?"),
              "exported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    if weights is not None:
        source["weights"] = weights.name
        source["weights_sha256"] = sha256_file(weights)
    return source


def list_layers(model: str, weights: Path | None, input_size: tuple[int, int], show_all: bool = False) -> list[str]:
    """Every node with a 4-D output (top-level modules and functional calls) as a target candidate, in
    tools/export/layer_list.py's format."""
    net = model_spec.load(model, weights)
    try:
        default: str | None = graph.default_target(net)
    except graph.GraphError:
        default = None
    gm = graph.trace(net)
    with torch.no_grad():
        ShapeProp(gm).propagate(torch.zeros(1, 3, *input_size))
    found = []
    for node in gm.graph.nodes:
        meta: Any = node.meta.get("tensor_meta")
        if node.op in ("placeholder", "output") or meta is None or len(getattr(meta, "shape", ())) != 4:
            continue
        name = str(node.target) if node.op == "call_module" else node.name
        _, c, h, w = (int(v) for v in meta.shape)
        reason = None
        try:
            _split_and_head(net, name, input_size)
        except TorchExportError as e:
            reason = str(e).split(" (supported:")[0]
        kind = graph.describe(node, gm).split(" ", 1)[-1].strip("()")
        found.append(layer_list.Candidate(name, kind, (h, w, c), reason))
    return layer_list.summarise(found, default, show_all)
