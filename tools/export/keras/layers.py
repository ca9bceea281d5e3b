"""The Keras front end's --list-layers: every 4-D layer with why it cannot be the target (tools/export/layer_list.py
prints them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tools.export.keras.head_builder import HeadExportError, build_head
from tools.export.layer_list import Candidate, summarise
from tools.keras_support import keras_graph, model_io


def candidates(model: Any) -> list[Candidate]:
    """Every 4-D layer of the model, in order, with why it cannot be the target (None when it can)."""
    found = []
    for layer, tensor in keras_graph.feature_layers(model):
        shape = tuple(int(v) for v in tensor.shape[1:])
        reason = None
        try:
            chain = keras_graph.chain_to_output(model, layer.name)
            build_head(chain.layers, shape)  # type: ignore[arg-type]
        except (keras_graph.GraphError, HeadExportError) as e:
            reason = str(e)
        found.append(Candidate(layer.name, type(layer).__name__, shape, reason))
    return found


def list_layers(model_path: Path, weights: Path | None, show_all: bool = False) -> list[str]:
    model = model_io.load_model(model_path, weights)
    try:
        default: str | None = keras_graph.default_target(model)
    except keras_graph.GraphError:
        default = None
    return summarise(candidates(model), default, show_all)
