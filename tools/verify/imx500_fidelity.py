"""tools.verify on a bundle with an IMX500 trunk: the sensor simulated by MCT's quantised model against float.

The float side is the Keras model's trunk on the bundle's own preprocessing (pixel * 1/255 for the fruit CNN); the
sensor side is MCT's quantised model in the bundle (imx500/trunk_mct.keras run in Sony's TensorFlow venv, or
imx500/trunk_mct.onnx in its PyTorch venv) on what the sensor feeds it: the frame resized to
the network input, x = pixel * the recorded input scale (1/256). Both A go through the bundle's NumPy head; the report
gives top-1 agreement and the correlation of the Grad-CAM of the float top-1 class, besides the converter's memory use.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from edge.explain import bundle as bundle_format
from edge.explain import imx500_record
from edge.explain.bundle import Manifest
from edge.explain.cam import CamContext, get_method, normalise
from edge.explain.head import Head
from tools.export.imx500 import toolchain

TOP1_FLOOR = 0.99  # the fidelity asked of the simulated sensor trunk (docs/ai-camera.md)
CORRELATION_FLOOR = 0.99
IMX500_FAILED = ("FAIL imx500: the quantised sensor trunk moves the top class or the Grad-CAM more than the floors "
                 "allow, or does not fit the sensor: calibrate on more (and more typical) images, or pick an earlier "
                 "target layer or a smaller input")


def sensor_inputs(images: list[NDArray[np.uint8]], record: imx500_record.Imx500Trunk) -> NDArray[np.float32]:
    """(n, h, w, 3) float32: each (H, W, 3) uint8 RGB frame resized to the network input, x = pixel * input_scale."""
    h, w = record.input_size
    out = []
    for image in images:
        resized = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
        if record.channel_order == "BGR":
            resized = resized[..., ::-1]
        out.append(resized.astype(np.float32) * np.float32(record.input_scale))
    return np.stack(out)


def simulate(bundle: Path, x: NDArray[np.float32], venv: Path | None = None,
             quantised_trunk: str = imx500_record.QUANTISED_TRUNK) -> NDArray[np.float32]:
    """MCT's quantised trunk of the bundle on x (n, h, w, 3) -> A (n, h', w', k) float32, in Sony's venv for it."""
    chain = toolchain.PYTORCH if quantised_trunk == imx500_record.QUANTISED_TRUNK_ONNX else toolchain.KERAS
    with tempfile.TemporaryDirectory(prefix="imx500-sim-") as tmp:
        inputs, out = Path(tmp) / "x.npz", Path(tmp) / "a.npz"
        np.savez(inputs, x=x)
        toolchain.run(toolchain.venv_dir(venv, chain), ["simulate", str(bundle / quantised_trunk), str(inputs),
                                                        str(out)], chain=chain)
        return np.asarray(np.load(out)["a"], np.float32)


def _pearson(a: NDArray[np.float32], b: NDArray[np.float32]) -> float:
    a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
    denominator = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denominator) if denominator > 0 else float(np.allclose(a, b))


def compare(head_path: Path, float_A: NDArray[np.float32], sensor_A: NDArray[np.float32]) -> dict[str, Any]:
    """Top-1 agreement and Grad-CAM (of the float top-1 class) correlation of the two A through the NumPy head."""
    head = Head.load(head_path)
    method = get_method("gradcam")
    agree, correlations = 0, []
    for fa, sa in zip(float_A, sensor_A, strict=True):
        fp, sp = head.forward(fa), head.forward(sa)
        c = int(fp.probabilities.argmax())
        agree += int(sp.probabilities.argmax()) == c
        maps = [normalise(method.raw(CamContext(a, head, hp, head.score_gradient(hp, c, "logit"), c, "logit")))
                for a, hp in ((fa, fp), (sa, sp))]
        correlations.append(_pearson(maps[0], maps[1]))
    n = len(float_A)
    scale = float(np.abs(float_A).max()) or 1.0
    return {"images": n, "top1_agreement": agree / n, "mean_cam_correlation": float(np.mean(correlations)),
            "min_cam_correlation": float(np.min(correlations)),
            "max_rel_activation_diff": float(np.abs(sensor_A - float_A).max() / scale)}


def report(bundle: Path, manifest: Manifest, images: list[NDArray[np.uint8]], float_A: NDArray[np.float32],
           venv: Path | None = None) -> dict[str, Any]:
    """The report's imx500 section: fidelity of the simulated sensor trunk and the converter's memory use."""
    record = manifest.imx500
    if record is None:
        raise ValueError(f"{bundle} has no IMX500 trunk (export with --trunk imx500)")
    sensor_A = simulate(bundle, sensor_inputs(images, record), venv, record.quantised_trunk)
    out = compare(bundle / bundle_format.HEAD, float_A, sensor_A)
    out["memory"] = dict(record.memory)
    out["input_scale"], out["output_scale"] = record.input_scale, record.output_scale
    out["passed"] = bool(out["top1_agreement"] >= TOP1_FLOOR and out["mean_cam_correlation"] >= CORRELATION_FLOOR
                         and record.fits)
    return out


def lines(section: dict[str, Any]) -> list[str]:
    memory = section["memory"]
    return [
        f"(imx500) MCT's simulated sensor trunk (x = pixel * {section['input_scale']:g}, A in int8 steps of "
        f"{section['output_scale']:g}) vs float, {section['images']} images: top-1 {section['top1_agreement']:.3f}  "
        f"Grad-CAM corr {section['mean_cam_correlation']:.4f} (min {section['min_cam_correlation']:.4f})  "
        f"{'PASS' if section['passed'] else 'FAIL'} (floors: top-1 {TOP1_FLOOR}, corr {CORRELATION_FLOOR}, fits)",
        f"  sensor memory {memory.get('Memory Usage', '?')} of {memory.get('Total Memory Available On Chip', '?')} "
        f"({memory.get('Memory Utilization', '?')}), fits: {memory.get('Fit In Chip', '?')}",
    ] + ([] if section["passed"] else [IMX500_FAILED])
