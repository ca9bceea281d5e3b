"""A Keras 3 trunk carried into Sony's TensorFlow 2.15 venv: its architecture as a plain layer list, weights as arrays.

Keras 3's saved configs (DTypePolicy objects, its initializer forms) do not load in tf.keras 2.15, so the trunk goes
over as (class name, config, inbound layer names) per layer; tools/export/imx500/sony_worker.py rebuilds it there and
checks it against the outputs written here (probe.npz) before quantising.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

PROBE_COUNT = 8


class CarryError(Exception):
    """The trunk cannot be described for the TF 2.15 venv; the message names the layer."""


def _inbound_names(node_args: Any) -> list[str]:
    """Layer names of the tensors in one inbound node's call arguments (Keras 3: __keras_tensor__, keras_history)."""
    found: list[str] = []
    if isinstance(node_args, dict):
        if node_args.get("class_name") == "__keras_tensor__":
            return [str(node_args["config"]["keras_history"][0])]
        for value in node_args.values():
            found += _inbound_names(value)
    elif isinstance(node_args, list | tuple):
        for value in node_args:
            found += _inbound_names(value)
    return found


def layer_spec(feature_model: Any) -> dict[str, Any]:
    """spec.json: the trunk's layers in graph order, each with its config, inbound layer names and weight count."""
    config = feature_model.get_config()
    layers = []
    for entry in config["layers"]:
        name = entry["config"]["name"]
        nodes = entry.get("inbound_nodes", [])
        if len(nodes) > 1:
            raise CarryError(f"layer {name!r} is called more than once; shared layers are not carried over")
        args = nodes[0]["args"] if nodes else []
        inbound = _inbound_names(args)
        list_input = bool(args) and isinstance(args[0], list)
        layers.append({"name": name, "class_name": entry["class_name"], "config": entry["config"],
                       "inbound": inbound, "list_input": list_input,
                       "weights": len(feature_model.get_layer(name).get_weights())})
    outputs = feature_model.outputs
    if len(outputs) != 1 or len(feature_model.inputs) != 1:
        raise CarryError("the trunk must have one input and one output")
    output = config["output_layers"]  # Keras 3: ["bn4", 0, 0] for one output, else a list of such
    return {"layers": layers, "input_shape": [int(v) for v in feature_model.inputs[0].shape[1:]],
            "output": str(output[0] if isinstance(output[0], str) else output[0][0])}


def write(feature_model: Any, workdir: Path, calibration: list[NDArray[np.float32]]) -> None:
    """spec.json, weights.npz, probe.npz (inputs and the Keras 3 outputs) and calibration.npz into workdir."""
    if not calibration:
        raise CarryError("no calibration images")
    spec = layer_spec(feature_model)
    (workdir / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
    weights = {f"{layer['name']}/{i}": np.asarray(w)
               for layer in spec["layers"]
               for i, w in enumerate(feature_model.get_layer(layer["name"]).get_weights())}
    np.savez(workdir / "weights.npz", **weights)
    x = np.stack(calibration).astype(np.float32)  # (n, h, w, c) in the model's own input convention
    probe = x[:PROBE_COUNT]
    np.savez(workdir / "probe.npz", x=probe, y=np.asarray(feature_model.predict(probe, verbose=0), np.float32))
    np.savez(workdir / "calibration.npz", x=x)
