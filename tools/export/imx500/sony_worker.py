"""Runs inside Sony's IMX500 venv (scripts/imx500-venv: TensorFlow 2.15, MCT, imx500-converter), not the workstation's.

Started as a script (`VENV/bin/python tools/export/imx500/sony_worker.py ...`) by tools/export/imx500/toolchain.py, so
it imports nothing of this project. `convert WORKDIR` rebuilds the trunk from WORKDIR/spec.json + weights.npz, checks it
against the Keras 3 outputs in probe.npz, quantises it with MCT for the IMX500 (TPC 4.0) on calibration.npz, converts
it with imxconv-tf and writes WORKDIR/result.json; `simulate MODEL INPUTS OUT` runs MCT's exported quantised model.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

TPC_VERSION = "4.0"  # 1.0 (MCT's default) leaves a BatchNorm after a ReLU unquantised; the converter refuses it
AGREE_ATOL = 1e-3  # relative to the largest |A| of the probe: float32 TF 2.15 vs Keras 3 differ by rounding only
_KEEP = ("name", "trainable", "dtype")
_DROP = ("initializer", "regularizer", "constraint")  # weights are set afterwards; Keras 3's forms differ


class WorkerError(Exception):
    """One line for the workstation side to show the user."""


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
    want = probe["y"]
    if got.shape != want.shape:
        raise WorkerError(f"the rebuilt trunk gives {got.shape}, the Keras 3 model {want.shape}")
    worst = float(np.max(np.abs(got - want)) / max(float(np.max(np.abs(want))), 1e-12))
    if worst > AGREE_ATOL:
        raise WorkerError(f"the trunk rebuilt in TensorFlow 2.15 disagrees with the Keras 3 model "
                            f"(max |diff| {worst:.2g} of max |A|); a layer's config did not carry over")
    return worst


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
    """real = scale * q for MCT's power-of-two activation quantiser (threshold t, n bits)."""
    quantizer = holder.activation_holder_quantizer
    cfg = quantizer.get_config()
    bits, signed = int(cfg["num_bits"]), bool(cfg["signed"])
    threshold = float(np.ravel(cfg["threshold"])[0])
    return {"scale": threshold / 2 ** (bits - int(signed)), "bits": bits, "signed": signed, "threshold": threshold}


def _activation_quantisation(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(input, output) quantisation of the exported model: its first and last activation holders."""
    from mct_quantizers import KerasActivationQuantizationHolder, keras_load_quantized_model

    model = keras_load_quantized_model(str(path), compile=False)
    holders = [layer for layer in model.layers if isinstance(layer, KerasActivationQuantizationHolder)]
    if not holders:
        raise WorkerError(f"{path.name}: MCT's export has no activation quantisers")
    return _quantizer_scale(holders[0]), _quantizer_scale(holders[-1])


def _convert(keras_path: Path, out_dir: Path) -> str:
    """imxconv-tf on MCT's export: packerOut.zip and the memory report in out_dir; returns the converter's log."""
    exe = Path(sys.executable).with_name("imxconv-tf")
    if shutil.which("java") is None:
        raise WorkerError("imxconv-tf needs `java` on PATH (apt install default-jre-headless)")
    proc = subprocess.run([str(exe), "-i", str(keras_path), "-o", str(out_dir), "--overwrite-output"],
                          capture_output=True, text=True, check=False)
    log = proc.stdout + proc.stderr
    (out_dir / "converter.log").write_text(log, encoding="utf-8")
    if proc.returncode != 0 or not (out_dir / "packerOut.zip").is_file():
        errors = [line for line in log.splitlines() if "error" in line.lower()] or log.strip().splitlines()[-1:]
        raise WorkerError(f"imxconv-tf failed: {errors[-1] if errors else 'exit ' + str(proc.returncode)}")
    return log


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
    in_q, out_q = _activation_quantisation(keras_path)
    log = _convert(keras_path, out)
    version = subprocess.run([str(Path(sys.executable).with_name("imxconv-tf")), "--version"],
                             capture_output=True, text=True, check=False).stdout.strip()
    return {"agreement_max_rel": worst, "input_quantization": in_q, "output_quantization": out_q,
            "converter_log": log, "tensorflow": tf.__version__, "mct": mct.__version__,
            "converter": version, "tpc_version": TPC_VERSION}


def simulate(model_path: Path, inputs: Path, out: Path) -> None:
    """MCT's exported quantised trunk on the workstation: inputs.npz x (n, h, w, c) -> out.npz a (n, h', w', k)."""
    from mct_quantizers import keras_load_quantized_model

    model = keras_load_quantized_model(str(model_path), compile=False)
    x = np.load(inputs)["x"]
    np.savez(out, a=np.asarray(model.predict(x, batch_size=16, verbose=0), np.float32))


def main() -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("convert").add_argument("workdir", type=Path)
    s = sub.add_parser("simulate")
    for name in ("model", "inputs", "out"):
        s.add_argument(name, type=Path)
    args = p.parse_args()
    try:
        if args.command == "convert":
            result = convert(args.workdir)
            (args.workdir / "result.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
        else:
            simulate(args.model, args.inputs, args.out)
    except WorkerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
