"""Runs inside Sony's IMX500 venv (scripts/imx500-venv: TensorFlow 2.15, MCT, imx500-converter), not the workstation's.

Started as a module (`VENV/bin/python -m tools.export.imx500.sony_worker ...` from the checkout) by
tools/export/imx500/toolchain.py; of this project it imports only worker_common (standard library and NumPy).
`convert WORKDIR` rebuilds the trunk from WORKDIR/spec.json + weights.npz, checks it against the Keras 3 outputs in
probe.npz, quantises it with MCT for the IMX500 (TPC 4.0) on calibration.npz, converts it with
imxconv-tf and writes WORKDIR/result.json; `simulate MODEL INPUTS OUT` runs MCT's exported quantised model.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from tools.export.imx500.worker_common import TPC_VERSION, WorkerError, agreement, convert_and_report, main, pot_scale

AGREE_ATOL = 1e-3  # relative to the largest |A| of the probe: float32 TF 2.15 vs Keras 3 differ by rounding only
_KEEP = ("name", "trainable", "dtype")
_DROP = ("initializer", "regularizer", "constraint")  # weights are set afterwards; Keras 3's forms differ


def _layer_config(cls: Any, config: dict[str, Any]) -> dict[str, Any]:
    """The Keras 3 config cut to what this Keras 2 layer's constructor accepts."""
    params = inspect.signature(cls.__init__).parameters
    takes_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kept = {}
    for key, value in config.items():
        if any(key.endswith(d) for d in _DROP) or key == "dtype":
            continue
        if key in params or (takes_kwargs and key in _KEEP):
            kept[key] = value
    kept["dtype"] = "float32"
    return kept


def rebuild(spec: dict[str, Any], weights: Any) -> Any:
    """The functional trunk of spec.json in tf.keras 2.15, with the Keras 3 model's weights."""
    import tensorflow as tf

    tensors: dict[str, Any] = {}
    inputs = []
    for entry in spec["layers"]:
        name, kind = entry["name"], entry["class_name"]
        if kind == "InputLayer":
            tensors[name] = tf.keras.Input(shape=tuple(spec["input_shape"]), name=name)
            inputs.append(tensors[name])
            continue
        cls = getattr(tf.keras.layers, kind, None)
        if cls is None:
            raise WorkerError(f"layer {name!r}: {kind} has no tf.keras 2.15 counterpart to carry it into")
        layer = cls(**_layer_config(cls, entry["config"]))
        args = [tensors[n] for n in entry["inbound"]]
        tensors[name] = layer(args if entry.get("list_input") else args[0])
        arrays = [weights[f"{name}/{i}"] for i in range(entry["weights"])]
        if arrays:
            layer.set_weights(arrays)
    return tf.keras.Model(inputs, tensors[spec["output"]], name="trunk")


def _check_agreement(model: Any, probe: Any) -> float:
    got = model.predict(probe["x"], verbose=0)  # (n, h', w', k) float32
    return agreement(got, probe["y"], AGREE_ATOL, "the trunk rebuilt in TensorFlow 2.15 disagrees with the Keras 3 "
                     "model; a layer's config did not carry over")


def _quantise(model: Any, calibration: Any) -> Any:
    import model_compression_toolkit as mct
    from edgemdt_tpc import get_target_platform_capabilities

    tpc = get_target_platform_capabilities(tpc_version=TPC_VERSION, device_type="imx500")
    x = calibration["x"]  # (n, h, w, c) float32, the model's own input convention

    def representative() -> Iterator[list[Any]]:
        for i in range(0, len(x), 8):
            yield [x[i:i + 8]]

    quantised, _ = mct.ptq.keras_post_training_quantization(model, representative,
                                                             target_platform_capabilities=tpc)
    return quantised


def _quantizer_scale(holder: Any) -> dict[str, Any]:
    cfg = holder.activation_holder_quantizer.get_config()
    return pot_scale(int(cfg["num_bits"]), bool(cfg["signed"]), float(np.ravel(cfg["threshold"])[0]))


def _activation_quantisation(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(input, output) quantisation of the exported model: its first and last activation holders."""
    from mct_quantizers import KerasActivationQuantizationHolder, keras_load_quantized_model

    model = keras_load_quantized_model(str(path), compile=False)
    holders = [layer for layer in model.layers if isinstance(layer, KerasActivationQuantizationHolder)]
    if not holders:
        raise WorkerError(f"{path.name}: MCT's export has no activation quantisers")
    return _quantizer_scale(holders[0]), _quantizer_scale(holders[-1])


def convert(workdir: Path) -> dict[str, Any]:
    import model_compression_toolkit as mct
    import tensorflow as tf

    spec = json.loads((workdir / "spec.json").read_text(encoding="utf-8"))
    model = rebuild(spec, np.load(workdir / "weights.npz"))
    worst = _check_agreement(model, np.load(workdir / "probe.npz"))
    quantised = _quantise(model, np.load(workdir / "calibration.npz"))
    out = workdir / "out"
    out.mkdir(exist_ok=True)
    keras_path = out / "trunk_mct.keras"
    mct.exporter.keras_export_model(model=quantised, save_model_path=str(keras_path))
    return convert_and_report("imxconv-tf", keras_path, _activation_quantisation(keras_path), worst,
                              {"tensorflow": tf.__version__, "mct": mct.__version__})


def simulate(model_path: Path, inputs: Path, out: Path) -> None:
    """MCT's exported quantised trunk on the workstation: inputs.npz x (n, h, w, c) -> out.npz a (n, h', w', k)."""
    from mct_quantizers import keras_load_quantized_model

    model = keras_load_quantized_model(str(model_path), compile=False)
    x = np.load(inputs)["x"]
    np.savez(out, a=np.asarray(model.predict(x, batch_size=16, verbose=0), np.float32))


if __name__ == "__main__":
    raise SystemExit(main(convert, simulate))
