"""python -m tools.verify BUNDLE --model MODEL --images DIR: does the device's CAM equal the framework's?

TensorFlow computes Grad-CAM with GradientTape on the original Keras model (torch autograd on a PyTorch model,
tools/verify/torch_reference.py), for score = logit and probability; the rest of the CAM family against
pytorch-grad-cam / torch-cam or TensorFlow ops (tools/verify/family.py says which); the edge side runs the bundle in a
TensorFlow-free subprocess (tools/verify/edge_side.py). Two questions, two checks:
(a) the head: fed the framework's own target activations, does the NumPy head give its gradient's map and the
model's probabilities? This is the export's promise, to float32 rounding of the head's sums. (b) the features: how far
do the TFLite feature model's activations drift from the framework's (two float32 backends summing in different orders
drift by ~1e-4 after 50 layers), is that within what float32 and the depth explain (tools/verify/tolerance.py), and
what does it do to the map and the probabilities on the device path? int8 features are reported, not judged.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from edge.explain import bundle as bundle_format
from edge.explain.bundle import Preprocess
from edge.explain.cam import METHODS, normalise
from edge.explain.open_bundle import read_manifest
from tools.common import cli_support, contact_sheet
from tools.export import preprocess_spec, quiet
from tools.export.front_end import ExportError
from tools.keras_support import model_io
from tools.verify import edge_side, family, imx500_fidelity, references, report_text, tolerance
from tools.verify.inputs import load_images as load_images
from tools.verify.inputs import reference_inputs as reference_inputs
from tools.verify.references import VerifyError as VerifyError
from tools.verify.sheet import sheet_rows, sheet_title

CORRELATION_FLOOR = 0.999  # a float16 head's maps against TensorFlow's


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


def _peaks(expected: np.ndarray) -> np.ndarray:
    """max |expected| per image (N,)."""
    return np.asarray(np.abs(expected).max(axis=tuple(range(1, expected.ndim))))


def _max_rel(actual: np.ndarray, expected: np.ndarray, scale: np.ndarray | None = None) -> float:
    """max over images of max |actual - expected| / scale, scale = max |expected| per image unless given."""
    peak = np.maximum(_peaks(expected) if scale is None else scale, 1e-30)
    return float((np.abs(actual - expected).max(axis=tuple(range(1, expected.ndim))) / peak).max())


def probability_map_scale(logit_maps: np.ndarray, probability_maps: np.ndarray, p_class: np.ndarray) -> np.ndarray:
    """(N,) the size a probability-score map's rounding scales with. That map is p_c (map_c - sum_j p_j map_j) over
    the logit maps map_j: where p_c is near 1 its terms, each up to p_c max |logit map|, cancel to a tiny map, and
    float32's 1 - p_c alone is off by eps; the rounding scales with the terms, not with the map (EfficientNetB0 at
    64x64: a saturated map whose rounding is 3e-3 of it, 1e-6 of p_c max |logit map|)."""
    return np.maximum(_peaks(probability_maps), p_class * _peaks(logit_maps))


def map_metrics(cam: np.ndarray, probabilities: np.ndarray, expected_cam: np.ndarray, expected_p: np.ndarray,
                classes: np.ndarray, allowed_dp: float, scale: np.ndarray | None = None) -> dict[str, Any]:
    """How far maps (N, h, w) and probabilities (N, C) are from TensorFlow's; top-1 judged with near ties apart.

    A top-1 flip is a near tie when TensorFlow's own probabilities of its class and of the class the edge side chose
    are at most 2 * allowed_dp apart: the drift the check allows could swap them. (Not the drift measured: every flip
    is within twice that, p_c - p_k <= |dp_c| + |dp_k|, so such a bound would excuse every flip.)"""
    dp = np.abs(probabilities - expected_p).max(axis=1)  # (N,)
    chosen = np.argmax(probabilities, axis=1)  # (N,)
    rows = np.arange(len(classes))
    lead = expected_p[rows, classes] - expected_p[rows, chosen]  # (N,) TensorFlow's lead of its class over that one
    agree = chosen == classes
    near_tie = ~agree & (lead <= 2 * allowed_dp)
    return {
        "images": len(classes),
        "top1_agreement": float(agree.mean()),
        "top1_near_ties": int(near_tie.sum()),
        "near_tie_lead": 2 * allowed_dp,
        "max_abs_cam_raw_diff": float(np.abs(cam - expected_cam).max()),
        "max_rel_cam_raw_diff": _max_rel(cam, expected_cam, scale),
        "max_probability_diff": float(dp.max()),
        "mean_heatmap_correlation": float(np.mean([_pearson(a, b) for a, b in zip(cam, expected_cam, strict=True)])),
    }


def _within(m: dict[str, Any], tolerance: float | None) -> bool:
    """Exact to `tolerance`; or, for an approximation (tolerance None: a float16 head), the same top-1 and maps
    correlated at CORRELATION_FLOOR, the difference being reported as its cost."""
    top1_ok = m["top1_agreement"] + m["top1_near_ties"] / m["images"] >= 1.0
    if tolerance is None:
        return bool(top1_ok and m["mean_heatmap_correlation"] >= CORRELATION_FLOOR)
    return bool(top1_ok and m["max_rel_cam_raw_diff"] <= tolerance and m["max_probability_diff"] <= tolerance)


def judge(refs: dict[str, list[Any]], edge: dict[str, np.ndarray], method: str, dtype: str,
          tol: tolerance.Tolerances, sizes: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
    """The two questions: (a) is the head exact on TensorFlow's own activations, (b) how far do the TFLite features
    drift from TensorFlow's, and what does that do to the map and the probabilities. `sizes`: per score, the size
    (N,) each map's rounding scales with where that is not the map's own (Random CAM's cancelling terms; 0: none)."""
    amplify = 10 if method == "gradcampp" else family.AMPLIFY.get(method, 1)  # alphas, softmaxes amplify rounding
    exact = tol.head_dtype == "float32"  # float16 weights are an approximation: judged on agreement, cost shown
    # a trunk-pass method's (a) runs the perturbed copies through the TFLite trunk: the features' drift is in it
    head_tol = (tol.effect if method in family.TRUNK_PASS else tol.head) * amplify if exact else None
    effect_tol = tol.effect * amplify if exact else None
    # the probability drift each check allows, within which a top-1 flip is a near tie (float16: its own allowance)
    head_dp = tol.head * amplify if exact else tolerance.FLOAT16_HEAD_DP
    effect_dp = tol.effect * amplify + (0.0 if exact else tolerance.FLOAT16_HEAD_DP)
    tf_A = np.stack([r.activations for r in refs["logit"]])
    drift = _max_rel(edge["features"], tf_A)
    report: dict[str, Any] = {"head": {}, "scores": {}}
    logit_maps = np.stack([_reference_map(r, method) for r in refs["logit"]])
    for score, score_refs in refs.items():
        classes = np.array([r.class_index for r in score_refs])
        expected_cam = np.stack([_reference_map(r, method) for r in score_refs])
        expected_p = np.stack([r.probabilities for r in score_refs])
        scale = None if score == "logit" else probability_map_scale(logit_maps, expected_cam,
                                                                      expected_p[np.arange(len(classes)), classes])
        if sizes is not None:
            scale = np.maximum(_peaks(expected_cam) if scale is None else scale, sizes[score])
        head = map_metrics(edge[f"{score}_head_cam_raw"], edge[f"{score}_head_probabilities"], expected_cam,
                           expected_p, classes, head_dp, scale)
        head["passed"] = _within(head, head_tol)
        report["head"][score] = head
        full = map_metrics(edge[f"{score}_cam_raw"], edge[f"{score}_probabilities"], expected_cam, expected_p, classes,
                           effect_dp, scale)
        # int8 features cannot equal float ones: their agreement is reported, not required
        full["passed"] = dtype == "int8" or _within(full, effect_tol)
        report["scores"][score] = full
    report["feature_drift"] = {"max_rel": drift, "passed": dtype == "int8" or drift <= tol.features}
    report["tolerances"] = {"head": (tol.effect if method in family.TRUNK_PASS else tol.head) * amplify,
                            "head_rule": "exact" if exact else "agreement",
                            "correlation_floor": CORRELATION_FLOOR, "features": tol.features, "effect": tol.effect,
                            "accumulating_layers": tol.layers, "fan_in_sum": tol.fan_in_sum,
                            "head_fan_in_sum": tol.head_fan_in_sum, "head_dtype": tol.head_dtype}
    report["head_passed"] = all(m["passed"] for m in report["head"].values())
    report["features_passed"] = report["feature_drift"]["passed"] and all(
        m["passed"] for m in report["scores"].values())
    report["passed"] = report["head_passed"] and report["features_passed"]
    return report


def verify(bundle: Path, model_path: Path, weights: Path | None, images_dir: Path, limit: int,
           sheet: Path | None, method: str = "gradcam", convention: Preprocess | None = None,
           user_tolerance: float = 1.0, samples: int | None = None) -> dict[str, Any]:
    """The framework's references and the edge side's outputs for the images; report() judges them. `samples`: the
    noise or integration samples of SS-CAM, IS-CAM and Smooth Grad-CAM++ on both sides (None: the method's own)."""
    references.refuse_unchecked(model_path, method)
    manifest = read_manifest(bundle)
    paths, images = load_images(images_dir, limit)
    x = reference_inputs(images, convention or manifest.preprocess, manifest.input_shape)
    reference, tol = references.reference(model_path, weights, manifest, user_tolerance)
    framework = references.reference_name(model_path)
    scores = family.scores_checked(method, framework, bundle_format.SCORES)
    refs = {score: [reference(xi, score) for xi in tqdm(x, desc=f"reference ({score})", unit="img", leave=False)]
            for score in scores}
    sizes = None
    if method in family.FAMILY:
        sizes = references.add_family_maps(reference, x, refs, method, samples, references.is_pt2(model_path))
    tf_A = np.stack([r.activations for r in refs["logit"]])
    targets = {score: [r.class_index for r in rs] for score, rs in refs.items()}
    edge = edge_side.run(bundle, images, tf_A, targets, method, inputs=x, samples=samples)
    out = report(Checked(bundle, model_path, manifest, paths, images), refs, edge, method, tol, convention, sheet,
                 sizes)
    out["method_reference"] = family.reference_text(method, framework)
    if method in family.SAMPLED:
        out["samples"] = family.samples_of(method, samples)
    if manifest.imx500 is not None:  # the sensor trunk too: its simulation against these float activations
        out["imx500"] = imx500_fidelity.report(bundle, manifest, images, tf_A)
        out["passed"] = out["passed"] and out["imx500"]["passed"]
    return out


@dataclass(frozen=True)
class Checked:
    """What was compared: the bundle (and its manifest), the model, the images ((H, W, 3) uint8 RGB) and their paths."""

    bundle: Path
    model: Path
    manifest: bundle_format.Manifest
    paths: list[Path]
    images: list[np.ndarray]


def report(checked: Checked, refs: dict[str, list[Any]], edge: dict[str, np.ndarray], method: str,
           tol: tolerance.Tolerances, convention: Preprocess | None, sheet: Path | None,
           sizes: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
    """The report (no TensorFlow here): what was compared, judge()'s verdict, a convention that differs from the
    manifest's, and the contact sheet of the edge side's logit maps if asked for."""
    manifest = checked.manifest
    out: dict[str, Any] = {"bundle": str(checked.bundle), "model": str(checked.model),
                           "reference": references.reference_name(checked.model),
                           "features": manifest.features.dtype, "head_dtype": manifest.head_dtype, "method": method,
                           **judge(refs, edge, method, manifest.features.dtype, tol, sizes)}
    if convention is not None and convention != manifest.preprocess:
        out["preprocess_mismatch"] = {"manifest": asdict(manifest.preprocess), "given": asdict(convention)}
    if sheet is not None:
        cams = np.stack([normalise(c) for c in edge["logit_cam_raw"]])
        rows = sheet_rows(checked.paths, checked.images, edge["logit_probabilities"], cams,
                          list(manifest.class_names), method)
        contact_sheet.write_sheet(sheet, rows, title=sheet_title(method))
        out["contact_sheet"] = str(sheet)
    return out


def _convention(args: argparse.Namespace, channels: int) -> Preprocess | None:
    """The model's input convention as the user states it (None: trust the bundle's manifest)."""
    if args.preprocess is None and args.channel_order is None:
        return None
    if args.preprocess is None:
        raise VerifyError("--channel-order needs --preprocess too (the model's whole input convention)")
    return preprocess_spec.parse(args.preprocess, args.channel_order, channels)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tools.verify", description=__doc__.splitlines()[0])
    p.add_argument("bundle", type=Path, help="the bundle directory to check (as tools.export wrote it)")
    p.add_argument("--model", type=Path, required=True, help="the model the bundle was exported from: a Keras file, "
                   "PyTorch's package.module:callable / file.py:callable or a .pt2 program, or an .onnx file")
    p.add_argument("--weights", type=Path, help="weights .h5 for an architecture JSON model; a state_dict for PyTorch")
    p.add_argument("--images", type=Path, required=True, help="directory of images (searched recursively)")
    p.add_argument("--limit", type=int, default=32, help="at most this many images (default 32)")
    p.add_argument("--sheet", type=Path, help="contact sheet PNG (default: BUNDLE/verify.png)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--method", choices=list(METHODS), default="gradcam",
                   help="CAM method to check against its reference and to draw on the contact sheet: TensorFlow's "
                   "tape for Keras models; torch autograd, pytorch-grad-cam or torch-cam for PyTorch and ONNX "
                   "(docs/verify.md's table)")
    p.add_argument("--samples", type=int, help="noise or integration samples of sscam, iscam and smoothgradcampp, on "
                   "both sides (default: the method's own, 35, 10 and 4)")
    p.add_argument("--tolerance", type=float, default=1.0,
                   help="multiply the derived tolerances (float32 rounding through the model) by this: below 1 "
                   "stricter, above 1 looser (default 1)")
    p.add_argument("--preprocess", help="the model's own input convention, to check the bundle's against it "
                   "(same forms as tools.export; default: trust the bundle's manifest)")
    p.add_argument("--channel-order", choices=bundle_format.CHANNEL_ORDERS, help="with --preprocess")
    cli_support.add_common(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    cli_support.setup_logging(args.debug)
    model_io.quiet_tensorflow()
    if not args.tolerance > 0:
        print(f"error: --tolerance must be a positive factor, got {args.tolerance}", file=sys.stderr)
        return 2
    if args.samples is not None and args.samples < 1:
        print(f"error: --samples must be at least 1, got {args.samples}", file=sys.stderr)
        return 2
    with cli_support.one_line_errors(args.debug, VerifyError, model_io.ModelLoadError, edge_side.EdgeSideError,
                                     ExportError) as s, \
            quiet.quiet_unless(args.debug):
        manifest = read_manifest(args.bundle)
        report = verify(args.bundle, args.model, args.weights, args.images, args.limit,
                        args.sheet or args.bundle / "verify.png", args.method,
                        _convention(args, manifest.input_channels), args.tolerance, args.samples)
        return _print_report(report, args.json)
    return s.code


def _print_report(report: dict[str, Any], as_json: bool) -> int:
    """Print the report (JSON, or the text of report_text); the exit status: 0 passed, 1 failed."""
    print(json.dumps(report, indent=2) if as_json else "\n".join(report_text.lines(report)))
    return 0 if report["passed"] else 1
