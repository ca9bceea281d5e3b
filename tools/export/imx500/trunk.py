"""tools.export --trunk imx500: the bundle's trunk also compiled for the Raspberry Pi AI Camera's sensor (Sony IMX500).

After the usual bundle is written (features.tflite stays, so the bundle still runs on a Pi without the AI Camera), the
trunk is carried into Sony's venv for its framework: a Keras trunk into the TensorFlow 2.15 venv (carry.py), quantised
there by MCT and converted by imxconv-tf (sony_worker.py); a PyTorch trunk into the PyTorch venv (torch_carry.py),
quantised by MCT and converted by imxconv-pt (pt_worker.py). packerOut.zip, MCT's quantised model and the memory
report go to BUNDLE/imx500/ and the manifest gains its `imx500` section (edge/explain/imx500_record.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

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
                   help="imx500: also compile the trunk for the Raspberry Pi AI Camera's sensor (Keras and "
                   "module:callable PyTorch models; needs --calibration and Sony's venv: ./scripts/imx500-venv, "
                   "for PyTorch ./scripts/imx500-venv --pytorch)")
    p.add_argument("--imx500-venv", type=Path, help="Sony's toolchain venv (default: $EDGE_IMX500_VENV, else "
                   ".venv-imx500 in the checkout; PyTorch models: $EDGE_IMX500_PT_VENV, else .venv-imx500-pt)")


def refuse_early(args: argparse.Namespace) -> None:
    """Before any TensorFlow work: what --trunk imx500 cannot do, and whether Sony's venv is there."""
    from tools.export.onnx import model_file as onnx_model_file
    from tools.export.torch import model_spec, pt2_file

    if args.trunk != "imx500":
        return
    model = args.model
    if onnx_model_file.is_onnx_file(model) or pt2_file.is_pt2_file(model):
        raise Imx500ExportError("--trunk imx500 takes Keras models and PyTorch models given as module:callable "
                                "(MCT quantises an nn.Module, not an .onnx or .pt2 file): give the model's "
                                "module:callable with --weights, or export with --trunk tflite")
    if args.calibration is None:
        raise Imx500ExportError("--trunk imx500 needs --calibration IMAGE_DIR (real images for MCT to quantise on)")
    chain = toolchain.PYTORCH if model_spec.is_torch_spec(str(model)) else toolchain.KERAS
    toolchain.python_of(toolchain.venv_dir(args.imx500_venv, chain), chain)


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


def _output_order(network: Path, feature_shape: tuple[int, int, int], pytorch: bool) -> str:
    """HWC or CHW: the axis order of the output tensor as the converter's dnnParams.xml in packerOut.zip lists it."""
    with zipfile.ZipFile(network) as z:
        root = ElementTree.fromstring(z.read("dnnParams.xml"))
    tensor = root.find(".//outputTensor")
    if tensor is None:
        raise Imx500ExportError(f"{network.name}: dnnParams.xml lists no output tensor")
    dims = sorted(tensor.iter("dimension"), key=lambda d: int(d.get("ordinal", "0")))
    sizes = tuple(int(d.get("size", "0")) for d in dims)
    h, w, k = feature_shape
    orders = {"HWC": (h, w, k), "CHW": (k, h, w)}
    for order in ("CHW", "HWC") if pytorch else ("HWC", "CHW"):
        if sizes == orders[order]:
            return order
    raise Imx500ExportError(f"the converter's output tensor is {sizes}, not A {feature_shape} in HWC or CHW order")


def _convert(model_path: Path, weights: Path | None, manifest: Manifest, out: Path, inputs: list[Any],
             venv: Path | None, pytorch: bool) -> dict[str, Any]:
    """Carry the trunk into Sony's venv, quantise and convert it there; copy its files into out/imx500/."""
    from tools.export.imx500 import torch_carry

    chain = toolchain.PYTORCH if pytorch else toolchain.KERAS
    with tempfile.TemporaryDirectory(prefix="imx500-") as tmp:
        work = Path(tmp)
        if pytorch:
            torch_carry.write(str(model_path), weights, manifest.target_layer, work, inputs)
        else:
            carry.write(_feature_model(model_path, weights, manifest.target_layer), work, inputs)
        _LOGGER.info("quantising with MCT and converting with %s in %s (minutes)", chain.converter,
                     toolchain.venv_dir(venv, chain))
        toolchain.run(toolchain.venv_dir(venv, chain), ["convert", str(work)], log=work / "worker.log", chain=chain)
        result: dict[str, Any] = json.loads((work / "result.json").read_text(encoding="utf-8"))
        quantised = imx500_record.QUANTISED_TRUNK_ONNX if pytorch else imx500_record.QUANTISED_TRUNK
        (out / imx500_record.DIR).mkdir(exist_ok=True)
        shutil.copyfile(work / "out" / "packerOut.zip", out / imx500_record.NETWORK)
        shutil.copyfile(work / "out" / Path(quantised).name, out / quantised)
        shutil.copyfile(work / "out" / "trunk_mct_MemoryReport.json", out / imx500_record.MEMORY_REPORT)
        (out / imx500_record.DIR / "converter.log").write_text(result["converter_log"], encoding="utf-8")
    result["quantised_trunk"] = quantised
    return result


def add_trunk(model_path: Path, weights: Path | None, manifest: Manifest, out: Path, calibration: Path,
              count: int, venv: Path | None) -> Manifest:
    """Quantise and convert the bundle's trunk for the IMX500 into out/imx500/ and return the updated manifest."""
    from tools.export.keras import feature_export
    from tools.export.torch import model_spec

    _sensor_input_scale(manifest)
    pytorch = model_spec.is_torch_spec(str(model_path))
    inputs = feature_export.calibration_inputs(calibration, Preprocessor(manifest.preprocess, manifest.input_shape),
                                               count)
    result = _convert(model_path, weights, manifest, out, inputs, venv, pytorch)
    record = imx500_record.Imx500Trunk(
        output_shape=manifest.feature_shape,
        output_order=_output_order(out / imx500_record.NETWORK, manifest.feature_shape, pytorch),
        output_scale=float(result["output_quantization"]["scale"]),
        input_size=(manifest.input_height, manifest.input_width),
        input_scale=float(result["input_quantization"]["scale"]),
        channel_order=manifest.preprocess.channel_order, crop="centre",
        memory=_memory(out / imx500_record.MEMORY_REPORT),
        toolchain={"mct": result["mct"], "converter": result["converter"], "tpc_version": result["tpc_version"],
                   **{k: result[k] for k in ("tensorflow", "torch") if k in result},
                   "carried_max_rel_diff": f"{result['agreement_max_rel']:.2g}"},
        quantised_trunk=result["quantised_trunk"],
    )
    if not record.fits:
        _LOGGER.warning("the IMX500 trunk does not fit the sensor's memory (%s): use a smaller input or target",
                        record.memory.get("Memory Usage", "?"))
    files = dict(manifest.files)
    for name in (imx500_record.NETWORK, record.quantised_trunk, imx500_record.MEMORY_REPORT):
        files[name] = sha256_file(out / name)
    updated = dataclasses.replace(manifest, imx500=record, files=files)
    (out / bundle_format.MANIFEST).write_text(updated.to_json(), encoding="utf-8")
    return updated


def summary(record: imx500_record.Imx500Trunk) -> str:
    h, w, k = record.output_shape
    return (f"imx500: {imx500_record.NETWORK} uses {record.memory.get('Memory Usage', '?')} of "
            f"{record.memory.get('Total Memory Available On Chip', '?')} "
            f"({record.memory.get('Memory Utilization', '?')}, fits: {record.memory.get('Fit In Chip', '?')}); "
            f"A {h}x{w}x{k} ({record.output_order} on the sensor) in int8 steps of {record.output_scale:g}; "
            f"sensor input {record.input_size[1]}x{record.input_size[0]} {record.channel_order} "
            f"x = pixel * {record.input_scale:g}")
