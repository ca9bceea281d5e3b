"""tools.verify's verdict without TensorFlow: judge() and its tolerances, on made-up TensorFlow references and edge
outputs whose differences are chosen (tests/verify_made_up.py; its metrics by hand: tests/test_verify_metrics.py; the
report, the reference inputs and the CLI: tests/test_verify_report_cli.py; the end-to-end verdicts on real bundles:
tests/test_verify.py). In-process, so that mutation testing selects these tests."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from verify_made_up import TOL, N, exact_edge, made_up_refs, nudged

from tools.verify import report_text, tolerance, verifier


def test_exact_outputs_pass_both_checks_and_the_report_names_the_tolerances() -> None:
    refs = made_up_refs()
    report = verifier.judge(refs, exact_edge(refs), "gradcam", "float32", TOL)
    assert report["passed"] and report["head_passed"] and report["features_passed"]
    assert report["feature_drift"] == {"max_rel": 0.0, "passed": True}
    assert set(report["head"]) == set(report["scores"]) == {"logit", "probability"}
    head = report["head"]["logit"]
    assert head == {"images": N, "top1_agreement": 1.0, "top1_near_ties": 0, "near_tie_lead": 2 * TOL.head,
                    "max_abs_cam_raw_diff": 0.0, "max_rel_cam_raw_diff": 0.0, "max_probability_diff": 0.0,
                    "mean_heatmap_correlation": 1.0, "passed": True}
    assert report["scores"]["probability"]["near_tie_lead"] == 2 * TOL.effect
    assert report["tolerances"] == {"head": TOL.head, "head_rule": "exact", "correlation_floor": 0.999,
                                    "features": TOL.features, "effect": TOL.effect, "accumulating_layers": 6,
                                    "fan_in_sum": 4000, "head_fan_in_sum": 300, "head_dtype": "float32"}


@pytest.mark.parametrize("score", ["logit", "probability"])
def test_a_head_map_off_by_more_than_its_tolerance_fails_the_head_only(score: str) -> None:
    refs = made_up_refs()
    edge = exact_edge(refs)
    within = verifier.judge(refs, nudged(edge, f"{score}_head_cam_raw", 0.5 * TOL.head), "gradcam", "float32", TOL)
    assert within["passed"]
    report = verifier.judge(refs, nudged(edge, f"{score}_head_cam_raw", 2 * TOL.head), "gradcam", "float32", TOL)
    assert not report["head"][score]["passed"] and all(report["head"][s]["passed"] for s in refs if s != score)
    assert not report["head_passed"] and report["features_passed"] and not report["passed"]


def test_probabilities_off_fail_the_check_they_are_in() -> None:
    refs = made_up_refs()
    edge = exact_edge(refs)
    head = edge["logit_head_probabilities"].copy()
    head[2, 0] += 2 * TOL.head
    report = verifier.judge(refs, edge | {"logit_head_probabilities": head}, "gradcam", "float32", TOL)
    assert report["head"]["logit"]["max_probability_diff"] == pytest.approx(2 * TOL.head, rel=1e-3)
    assert not report["head_passed"] and report["features_passed"]
    full = edge["probability_probabilities"].copy()
    full[0, 1] += 2 * TOL.effect
    report = verifier.judge(refs, edge | {"probability_probabilities": full}, "gradcam", "float32", TOL)
    assert not report["scores"]["probability"]["passed"] and report["scores"]["logit"]["passed"]
    assert report["head_passed"] and not report["features_passed"] and not report["passed"]


def test_feature_drift_fails_float_features_and_is_only_reported_for_int8() -> None:
    refs = made_up_refs()
    edge = nudged(exact_edge(refs), "features", 2 * TOL.features)
    report = verifier.judge(refs, edge, "gradcam", "float32", TOL)
    assert report["feature_drift"]["max_rel"] == pytest.approx(2 * TOL.features, rel=1e-3)
    assert not report["feature_drift"]["passed"] and not report["features_passed"] and report["head_passed"]
    edge = nudged(nudged(edge, "logit_cam_raw", 0.5), "logit_probabilities", 0.5)
    int8 = verifier.judge(refs, edge, "gradcam", "int8", TOL)
    assert int8["feature_drift"]["passed"] and int8["scores"]["logit"]["passed"] and int8["passed"]
    assert int8["scores"]["logit"]["max_rel_cam_raw_diff"] == pytest.approx(0.5, rel=1e-3)
    broken_head = verifier.judge(refs, nudged(edge, "logit_head_cam_raw", 0.5), "gradcam", "int8", TOL)
    assert not broken_head["passed"]  # the head is judged whatever the features' type


def test_gradcampp_gets_ten_times_the_tolerance_and_its_own_reference() -> None:
    refs = made_up_refs()
    edge = exact_edge(refs, "gradcampp")
    assert np.allclose(edge["logit_cam_raw"][0], 2 * refs["logit"][0].cam_raw)
    off = nudged(edge, "logit_head_cam_raw", 5 * TOL.head)
    assert verifier.judge(refs, off, "gradcampp", "float32", TOL)["passed"]
    report = verifier.judge(refs, nudged(edge, "logit_head_cam_raw", 20 * TOL.head), "gradcampp", "float32", TOL)
    assert not report["passed"] and report["tolerances"]["head"] == pytest.approx(10 * TOL.head)
    assert not verifier.judge(refs, nudged(exact_edge(refs), "logit_head_cam_raw", 5 * TOL.head), "gradcam", "float32",
                              TOL)["passed"]
    # ... and ten times the near-tie bound: the probability drift each check allows
    report = verifier.judge(refs, edge, "gradcampp", "float32", TOL)
    assert report["head"]["logit"]["near_tie_lead"] == pytest.approx(2 * 10 * TOL.head)
    assert report["scores"]["probability"]["near_tie_lead"] == pytest.approx(2 * 10 * TOL.effect)


def test_a_float16_head_is_judged_on_agreement_not_exactness() -> None:
    refs = made_up_refs()
    half = tolerance.Tolerances(6, 4000, 300, "float16")
    edge = exact_edge(refs)
    close = edge | {"logit_head_cam_raw": edge["logit_head_cam_raw"] * 1.01}  # 1% off, perfectly correlated
    report = verifier.judge(refs, close, "gradcam", "float32", half)
    assert report["passed"] and report["tolerances"]["head_rule"] == "agreement"
    assert report["head"]["logit"]["max_rel_cam_raw_diff"] == pytest.approx(0.01, rel=1e-3)
    shuffled = edge["logit_head_cam_raw"].copy()
    shuffled[0] = shuffled[0][::-1, ::-1]  # same values, another map: correlation below the floor
    assert not verifier.judge(refs, edge | {"logit_head_cam_raw": shuffled}, "gradcam", "float32", half)["passed"]


def test_a_method_without_a_tensorflow_reference_is_refused_by_name() -> None:
    r = SimpleNamespace(cam_raw=np.ones((2, 2)), methods={"gradcampp": np.zeros((2, 2))})
    assert verifier._reference_map(r, "gradcam") is not None and verifier._reference_map(r, "gradcampp").sum() == 0
    with pytest.raises(verifier.VerifyError) as refused:
        verifier._reference_map(r, "cam")
    assert str(refused.value) == "method 'cam' has no TensorFlow reference for this model (cam needs GAP -> Dense)"


def test_a_saturated_probability_map_is_judged_against_the_size_of_its_terms() -> None:
    """p_c near 1 cancels the probability map's terms to a small map (here a tenth of p_c max |logit map|): its
    rounding scales with the terms, so a difference of twice the tolerance of the small map itself passes there,
    and the same relative difference on the logit map (no cancellation) does not."""
    refs = made_up_refs(probability_map=0.05)
    edge = exact_edge(refs)
    for key, allowed in (("probability_head_cam_raw", TOL.head), ("probability_cam_raw", TOL.effect)):
        assert verifier.judge(refs, nudged(edge, key, 2 * allowed), "gradcam", "float32", TOL)["passed"], key
        assert not verifier.judge(refs, nudged(edge, key.replace("probability", "logit"), 2 * allowed), "gradcam",
                                  "float32", TOL)["passed"], key
    assert not verifier.judge(refs, nudged(edge, "logit_head_cam_raw", 2 * TOL.head), "gradcam", "float32",
                              TOL)["passed"]
    assert not verifier.judge(refs, nudged(edge, "probability_head_cam_raw", 40 * TOL.head), "gradcam", "float32",
                              TOL)["passed"]


def test_the_device_path_tolerance_follows_the_method_and_the_head_rule() -> None:
    refs = made_up_refs()
    pp = exact_edge(refs, "gradcampp")
    assert verifier.judge(refs, nudged(pp, "logit_cam_raw", 5 * TOL.effect), "gradcampp", "float32", TOL)["passed"]
    half = tolerance.Tolerances(6, 4000, 300, "float16")
    edge = exact_edge(refs)
    close = edge | {"logit_cam_raw": edge["logit_cam_raw"] * 1.01}  # float16 head: judged on agreement here too
    assert verifier.judge(refs, close, "gradcam", "float32", half)["passed"]


def _decided(refs: dict[str, list[Any]], lead: float) -> dict[str, list[Any]]:
    """refs whose probabilities are (0.5, 0.5 - lead, lead) on every image: TensorFlow's class 0 leads class 1 by
    `lead` (and class 2 by more while lead < 0.25)."""
    p = np.array([0.5, 0.5 - lead, lead], np.float32)
    return {score: [SimpleNamespace(**(vars(r) | {"probabilities": p, "class_index": 0})) for r in rs]
            for score, rs in refs.items()}


def _flipped(edge: dict[str, np.ndarray], key: str, by: float) -> dict[str, np.ndarray]:
    """edge with `key`'s probabilities moved by `by` from class 0 to class 1 on image 1 (maps untouched)."""
    p = edge[key].copy()
    p[1, 0] -= by
    p[1, 1] += by
    return edge | {key: p}


def test_a_float16_head_that_flips_clearly_decided_images_fails_the_head_check() -> None:
    """The drift a float16 head may cause is tolerance.FLOAT16_HEAD_DP; its maps perfectly correlated, a flip where
    TensorFlow's class leads by 0.2 (100x that) is a changed top-1, named as the head's failure."""
    half = tolerance.Tolerances(6, 4000, 300, "float16")
    refs = _decided(made_up_refs(), lead=0.2)
    edge = exact_edge(refs)
    flipped = _flipped(edge, "logit_head_probabilities", 0.15)  # 0.35 vs 0.45: class 1 wins
    report = verifier.judge(refs, flipped, "gradcam", "float32", half)
    head = report["head"]["logit"]
    assert head["top1_agreement"] == 0.75 and head["top1_near_ties"] == 0 and head["mean_heatmap_correlation"] == 1
    assert not head["passed"] and report["head"]["probability"]["passed"]
    assert not report["head_passed"] and report["features_passed"] and not report["passed"]
    conclusion = report_text.lines(report | {"bundle": "b", "model": "m", "features": "float32",
                                             "head_dtype": "float16", "method": "gradcam"})[-1]
    assert conclusion == report_text.HEAD16_FAILED and "FAIL map" not in conclusion
    device = verifier.judge(refs, _flipped(edge, "logit_probabilities", 0.15), "gradcam", "float32", half)
    assert device["head_passed"] and not device["scores"]["logit"]["passed"] and not device["passed"]


def test_a_genuine_near_tie_passes_and_the_report_shows_its_bound() -> None:
    """float16 head: TensorFlow's lead of 1e-3 is within 2 * FLOAT16_HEAD_DP (2e-3), a flip there is a near tie;
    the device path allows the feature effect on top (leads up to 2 * (effect + FLOAT16_HEAD_DP)). An exact head:
    leads up to 2 * its tolerance."""
    half = tolerance.Tolerances(6, 4000, 300, "float16")
    near = _decided(made_up_refs(), lead=1e-3)
    report = verifier.judge(near, _flipped(exact_edge(near), "logit_head_probabilities", 6e-4), "gradcam", "float32",
                            half)
    head = report["head"]["logit"]
    assert report["passed"] and head["top1_near_ties"] == 1 and head["near_tie_lead"] == 2 * tolerance.FLOAT16_HEAD_DP
    assert "(+1 near-tie: TensorFlow's lead <= 2.0e-03)" in "\n".join(report_text.lines(
        report | {"bundle": "b", "model": "m", "features": "float32", "head_dtype": "float16", "method": "gradcam"}))
    lead = 2 * TOL.effect + tolerance.FLOAT16_HEAD_DP  # beyond the head's and 2 * effect, within the device path's
    mid = _decided(made_up_refs(), lead)
    flip_head = _flipped(exact_edge(mid), "logit_head_probabilities", lead / 2 + 1e-4)
    assert not verifier.judge(mid, flip_head, "gradcam", "float32", half)["head_passed"]
    flip_device = _flipped(exact_edge(mid), "logit_probabilities", lead / 2 + 1e-4)
    device = verifier.judge(mid, flip_device, "gradcam", "float32", half)
    assert device["passed"] and device["scores"]["logit"]["top1_near_ties"] == 1
    beyond = 2 * (TOL.effect + tolerance.FLOAT16_HEAD_DP) + 1e-4
    far = _decided(made_up_refs(), beyond)
    assert not verifier.judge(far, _flipped(exact_edge(far), "logit_probabilities", beyond / 2 + 1e-4), "gradcam",
                              "float32", half)["passed"]
    exact = _decided(made_up_refs(), 1.5 * TOL.head)  # an exact head: within 2 * its tolerance
    flip = _flipped(exact_edge(exact), "logit_head_probabilities", 0.8 * TOL.head)
    report = verifier.judge(exact, flip, "gradcam", "float32", TOL)
    assert report["passed"] and report["head"]["logit"]["top1_near_ties"] == 1


def test_feature_drift_at_its_tolerance_passes() -> None:
    refs = made_up_refs()
    edge = exact_edge(refs)
    features = np.zeros((N, 2, 2, 1))  # float64: the drift below is exactly the tolerance
    features[:, 0, 0, 0] = 1.0
    tf_side = {score: [SimpleNamespace(**(vars(r) | {"activations": f})) for r, f in zip(rs, features, strict=True)]
               for score, rs in refs.items()}
    drifted = features.copy()
    drifted[2, 1, 1, 0] = TOL.features
    report = verifier.judge(tf_side, edge | {"features": drifted}, "gradcam", "float32", TOL)
    assert report["feature_drift"] == {"max_rel": TOL.features, "passed": True}

