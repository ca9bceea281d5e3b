"""tools.verify's report as a person reads it: the two checks, their tolerances, and what a failure means."""

from __future__ import annotations

from typing import Any

from tools.verify import family, imx500_fidelity

HEAD_FAILED = (
    "FAIL head: fed TensorFlow's own target activations, the NumPy head does not reproduce tape.gradient and the "
    "probabilities: the head does not compute what the Keras layers after the target compute (an export bug, or a "
    "head.npz that was changed: re-export; please report it if it persists)"
)
HEAD16_FAILED = (
    "FAIL head: fed TensorFlow's own target activations, the float16 head changes the top-1 class where "
    "TensorFlow's lead is more than twice the allowed drift (not a near tie), or its maps correlate with "
    "tape.gradient's below the floor: float16 weights cost too much here (export with --head-dtype float32)"
)
FEATURES_FAILED = (
    "FAIL features: the TFLite feature model's activations differ from TensorFlow's by more than float32 rounding "
    "explains: most often the bundle's preprocessing (--preprocess, --channel-order) is not the one the model was "
    "trained with, or the feature model was converted wrongly"
)
EFFECT_FAILED = (
    "FAIL map/probabilities: the features are within float32 rounding of TensorFlow's, but the maps or the "
    "probabilities move more than that drift explains (or the top-1 class changes where TensorFlow's lead is more "
    "than twice the allowed drift: not a near tie)"
)


def _metrics(m: dict[str, Any]) -> str:
    ties = (f" (+{m['top1_near_ties']} near-tie: TensorFlow's lead <= {m['near_tie_lead']:.1e})"
            if m.get("top1_near_ties") else "")
    return (f"top-1 {m['top1_agreement']:.3f}{ties}  map rel {m['max_rel_cam_raw_diff']:.2e}  "
            f"|dp| {m['max_probability_diff']:.2e}  corr {m['mean_heatmap_correlation']:.4f}")


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def lines(report: dict[str, Any]) -> list[str]:
    """The report's lines, naming the framework the reference ran in (report["reference"]: TensorFlow or PyTorch)."""
    if report.get("reference", "TensorFlow") == "TensorFlow":
        return _lines(report)
    return [line.replace("TensorFlow", "PyTorch").replace("tape.gradient", "torch autograd")
            .replace("the Keras layers", "the PyTorch modules") for line in _lines(report)]


def _lines(report: dict[str, Any]) -> list[str]:
    tol = report["tolerances"]
    int8 = report["features"] == "int8"
    out = [f"{report['bundle']} ({report['features']} features, {report['head_dtype']} head) vs {report['model']}, "
           f"method {report['method']}, {report['scores']['logit']['images']} images"]
    if "method_reference" in report:
        samples = f", {report['samples']} samples" if "samples" in report else ""
        out.append(f"  {report['method']}'s reference: {report['method_reference']}{samples}")
    if tol["head_rule"] == "exact" and report["method"] in family.TRUNK_PASS:
        out.append(f"(a) head on TensorFlow's own activations, its masked or noisy copies through the TFLite trunk, vs "
                   f"TensorFlow (tolerance {tol['head']:.1e}: the features' drift is in it):")
    elif tol["head_rule"] == "exact":
        out.append(f"(a) head on TensorFlow's own activations vs tape.gradient (the export's promise; tolerance "
                   f"{tol['head']:.1e} from float32 over {tol['head_fan_in_sum']} head inputs):")
    else:
        out.append(f"(a) {tol['head_dtype']} head on TensorFlow's own activations vs tape.gradient (an approximation: "
                   f"same top-1 and map correlation >= {tol['correlation_floor']} required, its cost shown):")
    for score, m in report["head"].items():
        out.append(f"  {score:12s} {_metrics(m)}  {_verdict(m['passed'])}")
    drift = report["feature_drift"]
    if int8:
        out.append(f"(b) int8 features vs TensorFlow's float activations: max rel {drift['max_rel']:.2e} "
                   "(quantised: reported, not judged)")
    else:
        out.append(f"(b) TFLite features vs TensorFlow's: max rel {drift['max_rel']:.2e}, tolerance "
                   f"{tol['features']:.1e} (float32 rounding through {tol['accumulating_layers']} layers, "
                   f"{tol['fan_in_sum']} summed inputs)  {_verdict(drift['passed'])}")
        judged = f"tolerance {tol['effect']:.1e}" if tol["head_rule"] == "exact" else "with the head's cost"
        out.append(f"    its effect, device path vs TensorFlow ({judged}):")
    for score, m in report["scores"].items():
        out.append(f"  {score:12s} {_metrics(m)}  {'' if int8 else _verdict(m['passed'])}".rstrip())
    if "preprocess_mismatch" in report:
        mismatch = report["preprocess_mismatch"]
        out.append(f"  note: the bundle's preprocessing {mismatch['manifest']} is not the given {mismatch['given']}")
    if "contact_sheet" in report:
        out.append(f"  contact sheet: {report['contact_sheet']}")
    if "imx500" in report:
        out += imx500_fidelity.lines(report["imx500"])
    out += _conclusion(report)
    return out


def _conclusion(report: dict[str, Any]) -> list[str]:
    if report["passed"]:
        head = ("the head is exact" if report["tolerances"]["head_rule"] == "exact" else
                f"the {report['head_dtype']} head agrees with TensorFlow (its cost is shown above)")
        if report["features"] == "int8":
            return [f"PASS: {head}; the int8 features' agreement is shown above"]
        return [f"PASS: {head}, and the feature model differs from TensorFlow only by float32 rounding"]
    failures = []
    if not report["head_passed"]:
        failures.append(HEAD_FAILED if report["tolerances"]["head_rule"] == "exact" else HEAD16_FAILED)
    if not report["feature_drift"]["passed"]:
        failures.append(FEATURES_FAILED)
    elif not report["features_passed"] and report["head_passed"]:  # a wrong head moves the device path too
        failures.append(EFFECT_FAILED)
    return failures
