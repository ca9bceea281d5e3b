"""python -m tools.verify BUNDLE --model MODEL --images DIR: does the device's Grad-CAM equal the framework's?

TensorFlow computes Grad-CAM with GradientTape on the original Keras model (torch autograd on a PyTorch model,
tools/verify/torch_reference.py), for score = logit and probability; the
edge side runs the bundle in a TensorFlow-free subprocess (the device path). For float bundles the maps must agree to
float precision; for int8 bundles it reports top-1 agreement and heatmap correlation with the float model.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from edge import bundle as bundle_format
from edge.cam import METHODS
from edge.preprocess import Preprocessor
from tools.common import cli_support, contact_sheet, edge_worker
from tools.export.keras.feature_export import IMAGE_SUFFIXES
from tools.export.torch import model_spec
from tools.keras_support import model_io

CAM_TOLERANCE = 1e-4  # max |cam_raw difference| / max |cam_raw|
PROBABILITY_TOLERANCE = 1e-5


class VerifyError(Exception):
    """Inputs to verify are missing or unusable."""


def load_images(directory: Path, limit: int) -> tuple[list[Path], list[np.ndarray]]:
    every = sorted(p for p in directory.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    paths = every[:: max(1, len(every) // limit)][:limit]  # spread over the class folders, not the first one only
    images, kept = [], []
    for path in paths:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is not None:
            images.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))  # (H, W, 3) uint8 RGB
            kept.append(path)
    if not images:
        raise VerifyError(f"{directory}: no readable images")
    return kept, images


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
    denominator = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denominator) if denominator > 0 else float(np.allclose(a, b))


def _reference_map(r: Any, method: str) -> np.ndarray:
    if method == "gradcam":
        return np.asarray(r.cam_raw)
    if method not in r.methods:
        raise VerifyError(f"method {method!r} has no TensorFlow reference for this model (cam needs GAP -> Dense)")
    return np.asarray(r.methods[method])


def compare(reference: Any, bundle: Path, x: np.ndarray, score: str,
            method: str = "gradcam") -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Metrics of the edge bundle against the TensorFlow reference over inputs x, for one score and CAM method."""
    refs = [reference(xi, score) for xi in tqdm(x, desc=f"reference {method} ({score})", unit="img", leave=False)]
    classes = [r.class_index for r in refs]
    # same class, comparable maps
    edge = edge_worker.explain_batch(bundle, x, score=score, targets=classes, method=method)
    rel, abs_diff, prob, corr = [], [], [], []
    for i, r in enumerate(refs):
        expected = _reference_map(r, method)
        diff = float(np.abs(edge["cam_raw"][i] - expected).max())
        abs_diff.append(diff)
        rel.append(diff / max(float(np.abs(expected).max()), 1e-30))
        prob.append(float(np.abs(edge["probabilities"][i] - r.probabilities).max()))
        corr.append(_pearson(edge["cam_raw"][i], expected))
    top1 = np.argmax(edge["probabilities"], axis=1) == np.array(classes)
    metrics = {
        "images": len(refs),
        "top1_agreement": float(top1.mean()),
        "max_abs_cam_raw_diff": max(abs_diff),
        "max_rel_cam_raw_diff": max(rel),
        "max_probability_diff": max(prob),
        "mean_heatmap_correlation": float(np.mean(corr)),
    }
    return metrics, edge


def passed(metrics: dict[str, Any], dtype: str, method: str = "gradcam") -> bool:
    if dtype == "int8":  # quantised features cannot equal float ones; agreement is reported, not required
        return True
    # Grad-CAM++'s alphas are ill-conditioned where sum(A) is large and negative (see tests/test_cam_methods.py).
    tolerance = 10 * CAM_TOLERANCE if method == "gradcampp" else CAM_TOLERANCE
    return bool(metrics["top1_agreement"] == 1.0 and metrics["max_rel_cam_raw_diff"] <= tolerance
                and metrics["max_probability_diff"] <= PROBABILITY_TOLERANCE)


def verify(bundle: Path, model_path: Path, weights: Path | None, images_dir: Path, limit: int,
           sheet: Path | None, method: str = "gradcam") -> dict[str, Any]:
    manifest = bundle_format.read_manifest(bundle)
    paths, images = load_images(images_dir, limit)
    preprocess = Preprocessor(manifest.preprocess, manifest.input_shape)
    x = np.stack([preprocess(image) for image in images])  # (N, h_in, w_in, c) float32
    reference = _reference(model_path, weights, manifest)
    report: dict[str, Any] = {"bundle": str(bundle), "model": str(model_path), "features": manifest.features.dtype,
                              "method": method, "scores": {}}
    edge_logit: dict[str, np.ndarray] = {}
    for score in bundle_format.SCORES:
        metrics, edge = compare(reference, bundle, x, score, method)
        metrics["passed"] = passed(metrics, manifest.features.dtype, method)
        report["scores"][score] = metrics
        if score == "logit":
            edge_logit = edge
    report["passed"] = all(m["passed"] for m in report["scores"].values())
    if sheet is not None:
        _write_sheet(sheet, paths, images, edge_logit, list(manifest.class_names))
        report["contact_sheet"] = str(sheet)
    return report


def _reference(model_path: Path, weights: Path | None, manifest: bundle_format.Manifest) -> Any:
    """The framework's own Grad-CAM: tf.GradientTape for Keras models, torch autograd for PyTorch MODULE:CALLABLE."""
    if not model_spec.is_torch_spec(str(model_path)):
        from tools.verify.tf_reference import GradCamReference

        return GradCamReference(model_io.load_model(model_path, weights), manifest.target_layer)
    if manifest.output_activation != "none":
        raise VerifyError("the PyTorch reference takes the model's outputs as logits; this bundle's model ends in "
                          f"{manifest.output_activation}")
    net = model_spec.load(str(model_path), weights)  # first: a one-line error where torch is not installed
    from tools.verify import torch_reference

    try:
        return torch_reference.TorchGradCamReference(net, manifest.target_layer)
    except ValueError as e:
        raise VerifyError(str(e)) from e


def _write_sheet(path: Path, paths: list[Path], images: list[np.ndarray], edge: dict[str, np.ndarray],
                 classes: list[str]) -> None:
    rows = []
    for i, (p, image) in enumerate(zip(paths, images, strict=True)):
        c = int(np.argmax(edge["probabilities"][i]))
        caption = f"{classes[c]} {edge['probabilities'][i][c]:.2f}"
        heat = contact_sheet.heatmap_rgb(edge["cam"][i], (image.shape[1], image.shape[0]))
        rows.append([(image, p.name), (heat, "Grad-CAM"), (contact_sheet.overlay_rgb(image, edge["cam"][i]), caption)])
    contact_sheet.write_sheet(path, rows, title="original | heatmap | overlay (edge, score=logit)")


def _print_table(report: dict[str, Any]) -> None:
    print(f"{report['bundle']} ({report['features']} features) vs {report['model']}, method {report['method']}")
    for score, m in report["scores"].items():
        print(f"  {score:12s} images {m['images']:3d}  top-1 agreement {m['top1_agreement']:.3f}  "
              f"max |dcam| {m['max_abs_cam_raw_diff']:.2e} (rel {m['max_rel_cam_raw_diff']:.2e})  "
              f"max |dp| {m['max_probability_diff']:.2e}  corr {m['mean_heatmap_correlation']:.4f}  "
              f"{'PASS' if m['passed'] else 'FAIL'}")
    if "contact_sheet" in report:
        print(f"  contact sheet: {report['contact_sheet']}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.verify", description=__doc__.splitlines()[0])
    p.add_argument("bundle", type=Path)
    p.add_argument("--model", type=Path, required=True, help="the model the bundle was exported from: a Keras file, "
                   "or PyTorch's package.module:callable / file.py:callable")
    p.add_argument("--weights", type=Path, help="weights .h5 for an architecture JSON model; a state_dict for PyTorch")
    p.add_argument("--images", type=Path, required=True, help="directory of images (searched recursively)")
    p.add_argument("--limit", type=int, default=32, help="at most this many images (default 32)")
    p.add_argument("--sheet", type=Path, help="contact sheet PNG (default: BUNDLE/verify.png)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--method", choices=list(METHODS), default="gradcam",
                   help="CAM method to check against its TensorFlow formula (tools/verify/tf_cams.py)")
    cli_support.add_common(p)
    args = p.parse_args(argv)
    cli_support.setup_logging(args.debug)
    model_io.quiet_tensorflow()
    with cli_support.one_line_errors(args.debug, VerifyError, model_io.ModelLoadError, edge_worker.WorkerError,
                                     model_spec.TorchExportError) as s:
        report = verify(args.bundle, args.model, args.weights, args.images, args.limit,
                        args.sheet or args.bundle / "verify.png", args.method)
        if args.json:
            print(json.dumps(report, indent=2))
        else:
            _print_table(report)
        return 0 if report["passed"] else 1
    return s.code
