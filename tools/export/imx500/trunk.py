"""tools.export --trunk imx500: the bundle's trunk also compiled for the Raspberry Pi AI Camera's sensor (Sony IMX500).

After the usual bundle is written (features.tflite stays, so the bundle still runs on a Pi without the AI Camera), the
Keras trunk is carried into Sony's venv (carry.py), quantised there by MCT and converted by imxconv-tf
(sony_worker.py); packerOut.zip, MCT's quantised model and the memory report go to BUNDLE/imx500/ and the manifest
gains its `imx500` section (edge/explain/imx500_record.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from edge.explain import bundle as bundle_format
from edge.explain import imx500_record
from edge.explain.bundle import Manifest
from edge.explain.bundle_check import sha256_file
from edge.explain.preprocess import Preprocessor
from tools.export.front_end import ExportError
from tools.export.imx500 import carry, toolchain

_LOGGER = logging.getLogger("tools.export")
MEMORY_KEYS = ("Memory Usage", "Total Memory Available On Chip", "Memory Utilization", "Fit In Chip")


class Imx500ExportError(ExportError):
    """The model cannot get an IMX500 trunk as asked; the message says why and what to do."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--trunk", choices=("tflite", "imx500"), default="tflite",
                   help="imx500: also compile the trunk for the Raspberry Pi AI Camera's sensor (Keras models; "
                   "needs --calibration and Sony's venv, ./scripts/imx500-venv)")
    p.add_argument("--imx500-venv", type=Path, help="Sony's toolchain venv (default: $EDGE_IMX500_VENV, "
                   "else .venv-imx500 in the checkout)")


def refuse_early(args: argparse.Namespace) -> None:
    """Before any TensorFlow work: what --trunk imx500 cannot do, and whether Sony's venv is there."""
    from tools.export.onnx import model_file as onnx_model_file
    from tools.export.torch import model_spec, pt2_file

    if args.trunk != "imx500":
        return
    model = args.model
    if model_spec.is_torch_spec(str(model)) or onnx_model_file.is_onnx_file(model) or pt2_file.is_pt2_file(model):
        raise Imx500ExportError("--trunk imx500 takes Keras models only (the converter's PyTorch route needs a "
                                "venv of its own, not made here): export the PyTorch model with --trunk tflite")
    if args.calibration is None:
        raise Imx500ExportError("--trunk imx500 needs --calibration IMAGE_DIR (real images for MCT to quantise on)")
    toolchain.python_of(toolchain.venv_dir(args.imx500_venv))


def _sensor_input_scale(manifest: Manifest) -> float:
    """The bundle's x = pixel * s (one s, no offset), as the sensor's unsigned 8-bit input can only give."""
    p = manifest.preprocess
    if any(o != 0 for o in p.offset) or len(set(p.scale)) != 1:
        raise Imx500ExportError(f"--trunk imx500 needs the model input to be pixel * one scale (preprocess scale "
                                f"{p.scale}, offset {p.offset}): put the normalisation inside the model")
    return p.scale[0]


def _feature_model(model_path: Path, weights: Path | None, target: str) -> Any:
    import keras

    from tools.keras_support import keras_graph, model_io

    model = model_io.load_model(model_path, weights)
    chain = keras_graph.chain_to_output(model, target)
    return keras.Model(model.inputs, chain.target_tensor, name="trunk")


def _memory(report_path: Path) -> dict[str, str]:
    report = json.loads(report_path.read_text(encoding="utf-8"))["Memory Report"]
    return {key: str(report[key]).lower() if isinstance(report[key], bool) else str(report[key])
            for key in MEMORY_KEYS if key in report}


def add_trunk(model_path: Path, weights: Path | None, manifest: Manifest, out: Path, calibration: Path,
              count: int, venv: Path | None) -> Manifest:
    """Quantise and convert the bundle's trunk for the IMX500 into out/imx500/ and return the updated manifest."""
    from tools.export.keras import feature_export

    _sensor_input_scale(manifest)
    feature_model = _feature_model(model_path, weights, manifest.target_layer)
    inputs = feature_export.calibration_inputs(calibration, Preprocessor(manifest.preprocess, manifest.input_shape),
                                               count)
    with tempfile.TemporaryDirectory(prefix="imx500-") as tmp:
        work = Path(tmp)
        carry.write(feature_model, work, inputs)
        _LOGGER.info("quantising with MCT and converting with imxconv-tf in %s (minutes)", toolchain.venv_dir(venv))
        toolchain.run(toolchain.venv_dir(venv), ["convert", str(work)], log=work / "worker.log")
        result = json.loads((work / "result.json").read_text(encoding="utf-8"))
        target = out / imx500_record.DIR
        target.mkdir(exist_ok=True)
        shutil.copyfile(work / "out" / "packerOut.zip", out / imx500_record.NETWORK)
        shutil.copyfile(work / "out" / "trunk_mct.keras", out / imx500_record.QUANTISED_TRUNK)
        shutil.copyfile(work / "out" / "trunk_mct_MemoryReport.json", out / imx500_record.MEMORY_REPORT)
        (target / "converter.log").write_text(result["converter_log"], encoding="utf-8")
    record = imx500_record.Imx500Trunk(
        output_shape=manifest.feature_shape, output_order="HWC",
        output_scale=float(result["output_quantization"]["scale"]),
        input_size=(manifest.input_height, manifest.input_width),
        input_scale=float(result["input_quantization"]["scale"]),
        channel_order=manifest.preprocess.channel_order, crop="centre",
        memory=_memory(out / imx500_record.MEMORY_REPORT),
        toolchain={"mct": result["mct"], "converter": result["converter"], "tpc_version": result["tpc_version"],
                   "tensorflow": result["tensorflow"], "carried_max_rel_diff": f"{result['agreement_max_rel']:.2g}"},
    )
    if not record.fits:
        _LOGGER.warning("the IMX500 trunk does not fit the sensor's memory (%s): use a smaller input or target",
                        record.memory.get("Memory Usage", "?"))
    files = dict(manifest.files)
    for name in (imx500_record.NETWORK, imx500_record.QUANTISED_TRUNK, imx500_record.MEMORY_REPORT):
        files[name] = sha256_file(out / name)
    updated = dataclasses.replace(manifest, imx500=record, files=files)
    (out / bundle_format.MANIFEST).write_text(updated.to_json(), encoding="utf-8")
    return updated


def summary(record: imx500_record.Imx500Trunk) -> str:
    h, w, k = record.output_shape
    return (f"imx500: {imx500_record.NETWORK} uses {record.memory.get('Memory Usage', '?')} of "
            f"{record.memory.get('Total Memory Available On Chip', '?')} "
            f"({record.memory.get('Memory Utilization', '?')}, fits: {record.memory.get('Fit In Chip', '?')}); "
            f"A {h}x{w}x{k} in int8 steps of {record.output_scale:g}; sensor input {record.input_size[1]}x"
            f"{record.input_size[0]} {record.channel_order} x = pixel * {record.input_scale:g}")
