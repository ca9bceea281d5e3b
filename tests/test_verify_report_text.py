"""tools.verify's report as a person reads it (tools/verify/report_text.py), line by line: what was compared, each
check's figures and verdict, and what a failure means. In-process and without TensorFlow, so that mutation testing
selects these tests; the reports are made by hand with chosen figures."""

from __future__ import annotations

import copy
from typing import Any

from tools.verify import report_text


def _metrics(passed: bool = True, ties: int = 0, lead: float = 2e-5) -> dict[str, Any]:
    return {"images": 4, "top1_agreement": 0.75 if ties else 1.0, "top1_near_ties": ties, "near_tie_lead": lead,
            "max_abs_cam_raw_diff": 1e-6, "max_rel_cam_raw_diff": 1.25e-6, "max_probability_diff": 3.5e-8,
            "mean_heatmap_correlation": 0.99996, "passed": passed}


def _report(**changes: Any) -> dict[str, Any]:
    report: dict[str, Any] = {
        "bundle": "fruit_b", "model": "fruit.keras", "features": "float32", "head_dtype": "float32",
        "method": "gradcam", "reference": "TensorFlow",
        "tolerances": {"head": 1e-5, "head_rule": "exact", "correlation_floor": 0.999, "features": 2e-4,
                       "effect": 3e-4, "accumulating_layers": 6, "fan_in_sum": 4000, "head_fan_in_sum": 300,
                       "head_dtype": "float32"},
        "head": {"logit": _metrics(), "probability": _metrics()},
        "scores": {"logit": _metrics(), "probability": _metrics()},
        "feature_drift": {"max_rel": 1.5e-5, "passed": True},
        "head_passed": True, "features_passed": True, "passed": True,
    }
    for key, value in changes.items():
        report[key] = value
    return report


ROW = "top-1 1.000  map rel 1.25e-06  |dp| 3.50e-08  corr 1.0000"


def test_a_passing_report_line_by_line() -> None:
    assert report_text.lines(_report()) == [
        "fruit_b (float32 features, float32 head) vs fruit.keras, method gradcam, 4 images",
        "(a) head on TensorFlow's own activations vs tape.gradient (the export's promise; tolerance 1.0e-05 from "
        "float32 over 300 head inputs):",
        f"  logit        {ROW}  PASS",
        f"  probability  {ROW}  PASS",
        "(b) TFLite features vs TensorFlow's: max rel 1.50e-05, tolerance 2.0e-04 (float32 rounding through 6 layers, "
        "4000 summed inputs)  PASS",
        "    its effect, device path vs TensorFlow (tolerance 3.0e-04):",
        f"  logit        {ROW}  PASS",
        f"  probability  {ROW}  PASS",
        "PASS: the head is exact, and the feature model differs from TensorFlow only by float32 rounding",
    ]


def test_a_pytorch_reference_is_named_as_such() -> None:
    text = report_text.lines(_report(reference="PyTorch", model="torchvision.models:resnet18"))
    assert text[1] == ("(a) head on PyTorch's own activations vs torch autograd (the export's promise; tolerance "
                       "1.0e-05 from float32 over 300 head inputs):")
    assert text[-1] == "PASS: the head is exact, and the feature model differs from PyTorch only by float32 rounding"
    failed = _report(reference="PyTorch", head_passed=False, passed=False)
    failed["head"]["logit"]["passed"] = False
    assert report_text.lines(failed)[-1] == report_text.HEAD_FAILED.replace("TensorFlow", "PyTorch").replace(
        "tape.gradient", "torch autograd").replace("the Keras layers", "the PyTorch modules")
    assert all("TensorFlow" not in line and "Keras" not in line for line in report_text.lines(failed))


def test_a_float16_head_with_a_near_tie_that_fails() -> None:
    report = _report(head_dtype="float16", head_passed=False, passed=False)
    report["tolerances"] |= {"head_rule": "agreement", "head_dtype": "float16"}
    report["head"]["logit"] = _metrics(passed=False, ties=1, lead=2 ** -9)
    lines = report_text.lines(report)
    assert lines[0] == "fruit_b (float32 features, float16 head) vs fruit.keras, method gradcam, 4 images"
    assert lines[1] == ("(a) float16 head on TensorFlow's own activations vs tape.gradient (an approximation: same "
                        "top-1 and map correlation >= 0.999 required, its cost shown):")
    assert lines[2] == ("  logit        top-1 0.750 (+1 near-tie: TensorFlow's lead <= 2.0e-03)  map rel 1.25e-06  "
                        "|dp| 3.50e-08  corr 1.0000  FAIL")
    assert lines[5] == "    its effect, device path vs TensorFlow (with the head's cost):"
    assert lines[-1] == report_text.HEAD16_FAILED


def test_a_passing_float16_head_and_int8_features() -> None:
    report = _report(head_dtype="float16")
    report["tolerances"] |= {"head_rule": "agreement", "head_dtype": "float16"}
    assert report_text.lines(report)[-1] == ("PASS: the float16 head agrees with TensorFlow (its cost is shown "
                                             "above), and the feature model differs from TensorFlow only by float32 "
                                             "rounding")
    int8 = _report(features="int8")
    int8["scores"]["logit"]["passed"] = int8["scores"]["probability"]["passed"] = True
    lines = report_text.lines(int8)
    assert lines[4:] == [
        "(b) int8 features vs TensorFlow's float activations: max rel 1.50e-05 (quantised: reported, not judged)",
        f"  logit        {ROW}",
        f"  probability  {ROW}",
        "PASS: the head is exact; the int8 features' agreement is shown above",
    ]


def test_each_failure_says_what_it_means() -> None:
    def conclusion(head: bool, drift: bool, effect: bool) -> list[str]:
        report = _report(head_passed=head, features_passed=drift and effect, passed=head and drift and effect)
        report["feature_drift"]["passed"] = drift
        lines = report_text.lines(report)
        return lines[lines.index(f"  probability  {ROW}  PASS", 4) + 1:]

    assert conclusion(False, True, True) == [report_text.HEAD_FAILED]
    assert conclusion(True, False, False) == [report_text.FEATURES_FAILED]
    assert conclusion(False, False, False) == [report_text.HEAD_FAILED, report_text.FEATURES_FAILED]
    assert conclusion(True, True, False) == [report_text.EFFECT_FAILED]
    assert conclusion(False, True, False) == [report_text.HEAD_FAILED]  # a wrong head moves the device path too
    report = _report(passed=False, features_passed=False)
    report["feature_drift"]["passed"] = False
    assert "tolerance 2.0e-04 (float32 rounding through 6 layers, 4000 summed inputs)  FAIL" in report_text.lines(
        report)[4]


def test_the_notes_after_the_checks() -> None:
    report = _report(preprocess_mismatch={"manifest": {"scale": 1}, "given": {"scale": 2}}, contact_sheet="b/v.png")
    lines = report_text.lines(copy.deepcopy(report))
    assert lines[-3:] == ["  note: the bundle's preprocessing {'scale': 1} is not the given {'scale': 2}",
                          "  contact sheet: b/v.png",
                          "PASS: the head is exact, and the feature model differs from TensorFlow only by float32 "
                          "rounding"]
