"""tools.verify's verdict without TensorFlow: judge(), its metrics and tolerances, the reference inputs and the CLI's
arguments, on made-up TensorFlow references and edge outputs whose differences are chosen (the end-to-end verdicts
on real bundles: tests/test_verify.py). In-process, so that mutation testing selects these tests."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import cv2
import numpy as np
import pytest

from edge.explain.bundle import FeatureModel, Manifest, Preprocess
from tools.verify import report_text, tolerance, verifier

N, C = 4, 3
TOL = tolerance.Tolerances(layers=6, fan_in_sum=4000, head_fan_in_sum=300, head_dtype="float32")


def _refs(seed: int = 0, probability_map: float = 0.5) -> dict[str, list[Any]]:
    """TensorFlow's side: per score, per image, activations (4, 4, 8), maps (4, 4), probabilities (C,), the class."""
    rng = np.random.default_rng(seed)
    activations = rng.uniform(0.1, 1.0, (N, 4, 4, 8)).astype(np.float32)
    refs: dict[str, list[Any]] = {}
    for s, score in enumerate(("logit", "probability")):
        refs[score] = []
        for i in range(N):
            p = np.full(C, 0.1, np.float32)
            p[i % C] = 0.8
            cam = rng.uniform(0.5, 2.0, (4, 4)).astype(np.float32) * (probability_map if s else 1.0)
            refs[score].append(SimpleNamespace(activations=activations[i], cam_raw=cam, probabilities=p,
                                               class_index=i % C, methods={"gradcampp": 2 * cam}))
    return refs


def _exact(refs: dict[str, list[Any]], method: str = "gradcam") -> dict[str, np.ndarray]:
    """The edge side agreeing with TensorFlow exactly."""
    edge = {"features": np.stack([r.activations for r in refs["logit"]])}
    for score, rs in refs.items():
        cam = np.stack([verifier._reference_map(r, method) for r in rs])
        p = np.stack([r.probabilities for r in rs])
        edge |= {f"{score}_head_cam_raw": cam, f"{score}_head_probabilities": p, f"{score}_cam_raw": cam.copy(),
                 f"{score}_probabilities": p.copy()}
    return edge


def _off(edge: dict[str, np.ndarray], key: str, relative: float) -> dict[str, np.ndarray]:
    """edge with one pixel (of image 1) of `key` moved by `relative` times that image's peak |value|."""
    out = {k: v.copy() for k, v in edge.items()}
    out[key][1].flat[1] += relative * np.abs(out[key][1]).max()
    return out


def test_exact_outputs_pass_both_checks_and_the_report_names_the_tolerances() -> None:
    refs = _refs()
    report = verifier.judge(refs, _exact(refs), "gradcam", "float32", TOL)
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
    refs = _refs()
    edge = _exact(refs)
    within = verifier.judge(refs, _off(edge, f"{score}_head_cam_raw", 0.5 * TOL.head), "gradcam", "float32", TOL)
    assert within["passed"]
    report = verifier.judge(refs, _off(edge, f"{score}_head_cam_raw", 2 * TOL.head), "gradcam", "float32", TOL)
    assert not report["head"][score]["passed"] and all(report["head"][s]["passed"] for s in refs if s != score)
    assert not report["head_passed"] and report["features_passed"] and not report["passed"]


def test_probabilities_off_fail_the_check_they_are_in() -> None:
    refs = _refs()
    edge = _exact(refs)
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
    refs = _refs()
    edge = _off(_exact(refs), "features", 2 * TOL.features)
    report = verifier.judge(refs, edge, "gradcam", "float32", TOL)
    assert report["feature_drift"]["max_rel"] == pytest.approx(2 * TOL.features, rel=1e-3)
    assert not report["feature_drift"]["passed"] and not report["features_passed"] and report["head_passed"]
    edge = _off(_off(edge, "logit_cam_raw", 0.5), "logit_probabilities", 0.5)
    int8 = verifier.judge(refs, edge, "gradcam", "int8", TOL)
    assert int8["feature_drift"]["passed"] and int8["scores"]["logit"]["passed"] and int8["passed"]
    assert int8["scores"]["logit"]["max_rel_cam_raw_diff"] == pytest.approx(0.5, rel=1e-3)
    broken_head = verifier.judge(refs, _off(edge, "logit_head_cam_raw", 0.5), "gradcam", "int8", TOL)
    assert not broken_head["passed"]  # the head is judged whatever the features' type


def test_gradcampp_gets_ten_times_the_tolerance_and_its_own_reference() -> None:
    refs = _refs()
    edge = _exact(refs, "gradcampp")
    assert np.allclose(edge["logit_cam_raw"][0], 2 * refs["logit"][0].cam_raw)
    off = _off(edge, "logit_head_cam_raw", 5 * TOL.head)
    assert verifier.judge(refs, off, "gradcampp", "float32", TOL)["passed"]
    report = verifier.judge(refs, _off(edge, "logit_head_cam_raw", 20 * TOL.head), "gradcampp", "float32", TOL)
    assert not report["passed"] and report["tolerances"]["head"] == pytest.approx(10 * TOL.head)
    assert not verifier.judge(refs, _off(_exact(refs), "logit_head_cam_raw", 5 * TOL.head), "gradcam", "float32",
                              TOL)["passed"]
    # ... and ten times the near-tie bound: the probability drift each check allows
    report = verifier.judge(refs, edge, "gradcampp", "float32", TOL)
    assert report["head"]["logit"]["near_tie_lead"] == pytest.approx(2 * 10 * TOL.head)
    assert report["scores"]["probability"]["near_tie_lead"] == pytest.approx(2 * 10 * TOL.effect)


def test_a_float16_head_is_judged_on_agreement_not_exactness() -> None:
    refs = _refs()
    half = tolerance.Tolerances(6, 4000, 300, "float16")
    edge = _exact(refs)
    close = edge | {"logit_head_cam_raw": edge["logit_head_cam_raw"] * 1.01}  # 1% off, perfectly correlated
    report = verifier.judge(refs, close, "gradcam", "float32", half)
    assert report["passed"] and report["tolerances"]["head_rule"] == "agreement"
    assert report["head"]["logit"]["max_rel_cam_raw_diff"] == pytest.approx(0.01, rel=1e-3)
    shuffled = edge["logit_head_cam_raw"].copy()
    shuffled[0] = shuffled[0][::-1, ::-1]  # same values, another map: correlation below the floor
    assert not verifier.judge(refs, edge | {"logit_head_cam_raw": shuffled}, "gradcam", "float32", half)["passed"]


def test_map_metrics_by_hand() -> None:
    expected_cam = np.array([[[1.0, 2.0], [3.0, 4.0]], [[2.0, 0.0], [0.0, -8.0]]], np.float32)
    cam = expected_cam + np.array([[[0.0, 0.0], [0.0, 0.4]], [[0.0, 0.0], [0.2, 0.0]]], np.float32)
    expected_p = np.array([[0.5, 0.3, 0.2], [0.40, 0.38, 0.22]], np.float32)
    probabilities = np.array([[0.5, 0.3, 0.2], [0.37, 0.41, 0.22]], np.float32)  # image 1: a flip at a near tie
    m = verifier.map_metrics(cam, probabilities, expected_cam, expected_p, np.array([0, 0]), 0.03)
    assert m["images"] == 2 and m["top1_agreement"] == 0.5 and m["top1_near_ties"] == 1
    assert m["max_abs_cam_raw_diff"] == pytest.approx(0.4) and m["max_rel_cam_raw_diff"] == pytest.approx(0.1)
    assert m["max_probability_diff"] == pytest.approx(0.03)
    assert m["mean_heatmap_correlation"] == pytest.approx(np.mean(
        [np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(cam, expected_cam, strict=True)]))
    assert verifier._within(m, 0.2)  # the flip is explained by the drift: not counted against top-1
    far = probabilities.copy()
    far[1] = [0.1, 0.8, 0.1]  # a flip far beyond the drift's reach
    m_far = verifier.map_metrics(cam, far, expected_cam, expected_p, np.array([0, 0]), 0.03)
    assert m_far["top1_agreement"] == 0.5 and not verifier._within(m_far, 0.2)
    scaled = verifier.map_metrics(cam, probabilities, expected_cam, expected_p, np.array([0, 0]), 0.03,
                                  scale=np.array([8.0, 0.5]))
    assert scaled["max_rel_cam_raw_diff"] == pytest.approx(0.4)  # 0.2 / 0.5 on image 1
    one_class = verifier.map_metrics(cam, probabilities[:, :1], expected_cam, expected_p[:, :1], np.array([0, 0]),
                                     0.03)
    assert one_class["top1_agreement"] == 1.0 and one_class["top1_near_ties"] == 0


def test_within_uses_each_bound_and_not_beyond() -> None:
    m = {"images": 4, "top1_agreement": 0.75, "top1_near_ties": 1, "max_rel_cam_raw_diff": 0.1,
         "max_probability_diff": 0.2, "mean_heatmap_correlation": 0.999}
    assert verifier._within(m, 0.2) and not verifier._within(m, 0.19)  # the probability bound, inclusive
    assert not verifier._within(m | {"max_rel_cam_raw_diff": 0.21}, 0.2)
    assert not verifier._within(m | {"top1_near_ties": 0}, 0.2)  # one image disagrees outright
    assert verifier._within(m, None) and not verifier._within(m | {"mean_heatmap_correlation": 0.998}, None)
    assert not verifier._within(m | {"top1_near_ties": 0}, None)


def test_probability_map_scale_and_relative_differences() -> None:
    logit_maps = np.array([[[1.0, -4.0]], [[0.5, 0.25]]], np.float32)  # peaks 4, 0.5
    probability_maps = np.array([[[0.01, 0.02]], [[0.3, -0.1]]], np.float32)  # peaks 0.02, 0.3
    scale = verifier.probability_map_scale(logit_maps, probability_maps, np.array([0.9, 0.2], np.float32))
    assert scale == pytest.approx([3.6, 0.3])  # max(0.02, 0.9 * 4), max(0.3, 0.2 * 0.5)
    assert verifier._peaks(np.array([[[-3.0, 1.0], [2.0, 0.0]], [[0.5, 0.0], [0.0, 0.0]]])) == pytest.approx([3, 0.5])
    zero = np.zeros((2, 2, 2))
    assert verifier._max_rel(zero, zero) == 0.0  # no division by a zero peak
    assert verifier._max_rel(zero + 1e-31, zero) > 0
    a = np.array([[[1.0, 1.0]], [[1.0, 3.0]]])
    assert verifier._max_rel(a + np.array([[[0.1, 0.0]], [[0.0, 0.3]]]), a) == pytest.approx(0.1)


def test_a_method_without_a_tensorflow_reference_is_refused_by_name() -> None:
    r = SimpleNamespace(cam_raw=np.ones((2, 2)), methods={"gradcampp": np.zeros((2, 2))})
    assert verifier._reference_map(r, "gradcam") is not None and verifier._reference_map(r, "gradcampp").sum() == 0
    with pytest.raises(verifier.VerifyError) as refused:
        verifier._reference_map(r, "cam")
    assert str(refused.value) == "method 'cam' has no TensorFlow reference for this model (cam needs GAP -> Dense)"


@pytest.mark.parametrize("resize,interpolation", [("bilinear", cv2.INTER_LINEAR), ("area", cv2.INTER_AREA),
                                                  ("nearest", cv2.INTER_NEAREST)])
def test_reference_inputs_follow_the_spec_not_the_preprocessor(resize: str, interpolation: int) -> None:
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, (9, 13, 3), np.uint8) for _ in range(2)]
    spec = Preprocess(channel_order="BGR", scale=(0.5, 0.25, 2.0), offset=(-1.0, 0.0, 3.0), resize=resize)
    x = verifier.reference_inputs(images, spec, (4, 6, 3))
    assert x.shape == (2, 4, 6, 3) and x.dtype == np.float32
    for xi, image in zip(x, images, strict=True):
        bgr = cv2.resize(image, (6, 4), interpolation=interpolation)[..., ::-1].astype(np.float32)
        assert np.array_equal(xi, bgr * np.float32([0.5, 0.25, 2.0]) + np.float32([-1.0, 0.0, 3.0]))
    rgb = verifier.reference_inputs(images, Preprocess(resize=resize), (4, 6, 3))
    assert np.array_equal(rgb[0], cv2.resize(images[0], (6, 4), interpolation=interpolation).astype(np.float32))


def test_the_stated_convention_needs_preprocess_and_channel_order_together() -> None:
    def args(preprocess: str | None, order: str | None) -> argparse.Namespace:
        return argparse.Namespace(preprocess=preprocess, channel_order=order)

    assert verifier._convention(args(None, None), 3) is None
    with pytest.raises(verifier.VerifyError) as refused:
        verifier._convention(args(None, "BGR"), 3)
    assert str(refused.value) == "--channel-order needs --preprocess too (the model's whole input convention)"
    caffe = verifier._convention(args("unit", "BGR"), 3)
    assert caffe is not None and caffe.channel_order == "BGR" and caffe.scale == pytest.approx((1 / 255,) * 3)


def test_command_line_defaults_and_refusals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = verifier._parser().parse_args(["b", "--model", "m.keras", "--images", "dir"])
    assert (args.bundle, args.model, args.images) == (Path("b"), Path("m.keras"), Path("dir"))
    assert (args.limit, args.method, args.tolerance, args.json, args.sheet, args.weights) == (
        32, "gradcam", 1.0, False, None, None)
    assert (args.preprocess, args.channel_order) == (None, None)
    parsed = verifier._parser().parse_args(["b", "--model", "m", "--images", "d", "--limit", "5", "--json",
                                            "--method", "gradcampp", "--tolerance", "2.5", "--channel-order", "BGR",
                                            "--preprocess", "caffe", "--weights", "w.h5", "--sheet", "s.png"])
    assert (parsed.limit, parsed.json, parsed.method, parsed.tolerance, parsed.channel_order, parsed.preprocess,
            parsed.weights, parsed.sheet) == (5, True, "gradcampp", 2.5, "BGR", "caffe", Path("w.h5"), Path("s.png"))
    for missing in (["b", "--images", "d"], ["b", "--model", "m"]):
        with pytest.raises(SystemExit):
            verifier._parser().parse_args(missing)
    with pytest.raises(SystemExit):
        verifier._parser().parse_args(["b", "--model", "m", "--images", "d", "--method", "nope"])
    capsys.readouterr()
    base = [str(tmp_path / "no-bundle"), "--model", "m", "--images", str(tmp_path)]
    assert verifier.main([*base, "--tolerance", "0"]) == 2
    assert capsys.readouterr().err == "error: --tolerance must be a positive factor, got 0.0\n"
    assert verifier.main(base) == 2  # no bundle: one line, no traceback
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "no-bundle" in err


def test_the_report_says_what_was_compared_and_draws_the_sheet_on_request(tmp_path: Path) -> None:
    refs = _refs()
    edge = _exact(refs)
    manifest = Manifest(class_names=("Apfel", "Orange", "Tomate"), input_shape=(8, 8, 3), feature_shape=(4, 4, 8),
                        target_layer="conv4", head_dtype="float32")
    images = [np.full((24, 32, 3), 60 * i, np.uint8) for i in range(N)]
    checked = verifier.Checked(Path("fruit_bundle"), Path("fruit.keras"), manifest,
                               [tmp_path / f"img_{i}.png" for i in range(N)], images)
    out = verifier.report(checked, refs, edge, "gradcam", TOL, None, None)
    assert {k: out[k] for k in ("bundle", "model", "features", "head_dtype", "method", "passed")} == {
        "bundle": "fruit_bundle", "model": "fruit.keras", "features": manifest.features.dtype,
        "head_dtype": "float32", "method": "gradcam", "passed": True}
    assert "preprocess_mismatch" not in out and "contact_sheet" not in out and out["reference"] == "TensorFlow"
    for torch_side in ("models/r18.onnx", "my_model.py:build"):
        other = dataclasses.replace(checked, model=Path(torch_side))
        assert verifier.report(other, refs, edge, "gradcam", TOL, None, None)["reference"] == "PyTorch"
    assert "preprocess_mismatch" not in verifier.report(checked, refs, edge, "gradcam", TOL, Preprocess(), None)
    bgr = Preprocess(channel_order="BGR")
    mismatch = verifier.report(checked, refs, edge, "gradcam", TOL, bgr, None)["preprocess_mismatch"]
    assert mismatch == {"manifest": dataclasses.asdict(Preprocess()), "given": dataclasses.asdict(bgr)}
    sheets = []
    for n in (2, N):
        sheet = tmp_path / f"sheet{n}.png"
        few = verifier.Checked(checked.bundle, checked.model, manifest, checked.paths[:n], images[:n])
        cut = {score: rs[:n] for score, rs in refs.items()}
        assert verifier.report(few, cut, {k: v[:n] for k, v in edge.items()}, "gradcam", TOL, None,
                               sheet)["contact_sheet"] == str(sheet)
        sheets.append(cv2.imread(str(sheet)))
    assert sheets[0] is not None and sheets[1] is not None
    assert sheets[0].shape[1] == sheets[1].shape[1] and sheets[0].shape[0] < sheets[1].shape[0]  # a row per image
    # the drawing is of sheet_rows() with the edge side's logit maps (normalised) and the method, under its title
    from tools.common import contact_sheet

    cams = np.stack([verifier.normalise(c) for c in edge["logit_cam_raw"]])
    rows = verifier.sheet_rows(checked.paths, images, edge["logit_probabilities"], cams, list(manifest.class_names),
                               "gradcampp")
    contact_sheet.write_sheet(tmp_path / "expected.png", rows, title=verifier.sheet_title("gradcampp"))
    verifier.report(checked, refs, edge, "gradcampp", TOL, None, tmp_path / "pp.png")
    assert np.array_equal(cv2.imread(str(tmp_path / "pp.png")), cv2.imread(str(tmp_path / "expected.png")))


def test_a_saturated_probability_map_is_judged_against_the_size_of_its_terms() -> None:
    """p_c near 1 cancels the probability map's terms to a small map (here a tenth of p_c max |logit map|): its
    rounding scales with the terms, so a difference of twice the tolerance of the small map itself passes there,
    and the same relative difference on the logit map (no cancellation) does not."""
    refs = _refs(probability_map=0.05)
    edge = _exact(refs)
    for key, allowed in (("probability_head_cam_raw", TOL.head), ("probability_cam_raw", TOL.effect)):
        assert verifier.judge(refs, _off(edge, key, 2 * allowed), "gradcam", "float32", TOL)["passed"], key
        assert not verifier.judge(refs, _off(edge, key.replace("probability", "logit"), 2 * allowed), "gradcam",
                                  "float32", TOL)["passed"], key
    assert not verifier.judge(refs, _off(edge, "logit_head_cam_raw", 2 * TOL.head), "gradcam", "float32",
                              TOL)["passed"]
    assert not verifier.judge(refs, _off(edge, "probability_head_cam_raw", 40 * TOL.head), "gradcam", "float32",
                              TOL)["passed"]


def test_the_device_path_tolerance_follows_the_method_and_the_head_rule() -> None:
    refs = _refs()
    pp = _exact(refs, "gradcampp")
    assert verifier.judge(refs, _off(pp, "logit_cam_raw", 5 * TOL.effect), "gradcampp", "float32", TOL)["passed"]
    half = tolerance.Tolerances(6, 4000, 300, "float16")
    edge = _exact(refs)
    close = edge | {"logit_cam_raw": edge["logit_cam_raw"] * 1.01}  # float16 head: judged on agreement here too
    assert verifier.judge(refs, close, "gradcam", "float32", half)["passed"]


def test_within_counts_near_ties_per_image_and_bounds_inclusively() -> None:
    m = {"images": 4, "top1_agreement": 0.5, "top1_near_ties": 1, "max_rel_cam_raw_diff": 0.2,
         "max_probability_diff": 0.2, "mean_heatmap_correlation": 1.0}
    assert not verifier._within(m, 0.2)  # 2 agree + 1 near tie of 4
    assert verifier._within(m | {"top1_agreement": 0.75}, 0.2)  # both bounds reached exactly: within


def test_near_ties_by_hand() -> None:
    """A flip is a near tie when TensorFlow's lead of its class over the class the edge side chose is within twice
    the allowed drift (here 0.125: leads up to 0.25), inclusive; however far the measured drift is."""
    classes = np.array([1, 0, 0, 0, 0])
    expected_p = np.array([[0.25, 0.5, 0.25], [0.5, 0.45, 0.05], [0.45, 0.40, 0.15], [0.75, 0.0, 0.25],
                           [0.5, 0.25, 0.25]], np.float32)
    probabilities = np.array([[0.5, 0.375, 0.125],  # flipped to class 0, lead exactly 0.25: a near tie
                              [0.4, 0.55, 0.05],  # flipped, lead 0.05: a near tie
                              [0.3, 0.3, 0.4],  # flipped to class 2: lead 0.3 though the runner-up is 0.05 behind
                              [0.25, 0.0, 0.75],  # flipped, lead 0.5: dp 0.5 reaches it, the allowed drift does not
                              [0.4, 0.3, 0.3]], np.float32)  # agrees
    cam = np.ones((5, 2, 2), np.float32)
    m = verifier.map_metrics(cam, probabilities, cam, expected_p, classes, 0.125)
    assert m["top1_agreement"] == pytest.approx(1 / 5) and m["top1_near_ties"] == 2 and m["near_tie_lead"] == 0.25
    for allowed, ties in ((0.125, 1), (0.12, 0)):  # two classes: lead 0.25 <= 2 * 0.125, > 2 * 0.12
        two = verifier.map_metrics(cam[:1], np.array([[0.375, 0.625]], np.float32), cam[:1],
                                   np.array([[0.625, 0.375]], np.float32), np.array([0]), allowed)
        assert two["top1_near_ties"] == ties


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
    refs = _decided(_refs(), lead=0.2)
    edge = _exact(refs)
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
    near = _decided(_refs(), lead=1e-3)
    report = verifier.judge(near, _flipped(_exact(near), "logit_head_probabilities", 6e-4), "gradcam", "float32",
                            half)
    head = report["head"]["logit"]
    assert report["passed"] and head["top1_near_ties"] == 1 and head["near_tie_lead"] == 2 * tolerance.FLOAT16_HEAD_DP
    assert "(+1 near-tie: TensorFlow's lead <= 2.0e-03)" in "\n".join(report_text.lines(
        report | {"bundle": "b", "model": "m", "features": "float32", "head_dtype": "float16", "method": "gradcam"}))
    lead = 2 * TOL.effect + tolerance.FLOAT16_HEAD_DP  # beyond the head's and 2 * effect, within the device path's
    mid = _decided(_refs(), lead)
    flip_head = _flipped(_exact(mid), "logit_head_probabilities", lead / 2 + 1e-4)
    assert not verifier.judge(mid, flip_head, "gradcam", "float32", half)["head_passed"]
    flip_device = _flipped(_exact(mid), "logit_probabilities", lead / 2 + 1e-4)
    device = verifier.judge(mid, flip_device, "gradcam", "float32", half)
    assert device["passed"] and device["scores"]["logit"]["top1_near_ties"] == 1
    beyond = 2 * (TOL.effect + tolerance.FLOAT16_HEAD_DP) + 1e-4
    far = _decided(_refs(), beyond)
    assert not verifier.judge(far, _flipped(_exact(far), "logit_probabilities", beyond / 2 + 1e-4), "gradcam",
                              "float32", half)["passed"]
    exact = _decided(_refs(), 1.5 * TOL.head)  # an exact head: within 2 * its tolerance
    flip = _flipped(_exact(exact), "logit_head_probabilities", 0.8 * TOL.head)
    report = verifier.judge(exact, flip, "gradcam", "float32", TOL)
    assert report["passed"] and report["head"]["logit"]["top1_near_ties"] == 1


def test_pearson_of_small_maps_is_their_correlation() -> None:
    rng = np.random.default_rng(3)
    a = 1e-3 * rng.normal(size=(5, 5))
    b = a + 1e-3 * rng.normal(size=(5, 5))
    assert verifier._pearson(a, b) == pytest.approx(np.corrcoef(a.ravel(), b.ravel())[0, 1], rel=1e-9)


def test_reference_inputs_round_like_float32_arithmetic() -> None:
    image = np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)
    spec = Preprocess(scale=(1 / 58.395, 1 / 57.12, 1 / 57.375), offset=(-2.1179, -2.0357, -1.8044))
    x = verifier.reference_inputs([image], spec, (5, 7, 3))[0]
    expected = image.astype(np.float32) * np.array(spec.scale, np.float32) + np.array(spec.offset, np.float32)
    assert x.dtype == np.float32 and np.array_equal(x, expected)


def test_a_one_channel_convention_has_one_value_per_channel() -> None:
    args = argparse.Namespace(preprocess="scale=0.5,offset=-1", channel_order=None)
    spec = verifier._convention(args, 1)
    assert spec is not None and spec.scale == (0.5,) and spec.offset == (-1.0,)


def test_the_report_of_an_int8_bundle_does_not_judge_its_features() -> None:
    refs = _refs()
    edge = _off(_exact(refs), "features", 0.1)
    manifest = Manifest(class_names=("a", "b", "c"), input_shape=(8, 8, 3), feature_shape=(4, 4, 8),
                        target_layer="conv4", features=FeatureModel(dtype="int8"))
    checked = verifier.Checked(Path("b"), Path("m"), manifest, [], [])
    out = verifier.report(checked, refs, edge, "gradcam", TOL, None, None)
    assert out["features"] == "int8" and out["passed"] and out["feature_drift"]["max_rel"] > TOL.features


def test_feature_drift_at_its_tolerance_passes() -> None:
    refs = _refs()
    edge = _exact(refs)
    features = np.zeros((N, 2, 2, 1))  # float64: the drift below is exactly the tolerance
    features[:, 0, 0, 0] = 1.0
    tf_side = {score: [SimpleNamespace(**(vars(r) | {"activations": f})) for r, f in zip(rs, features, strict=True)]
               for score, rs in refs.items()}
    drifted = features.copy()
    drifted[2, 1, 1, 0] = TOL.features
    report = verifier.judge(tf_side, edge | {"features": drifted}, "gradcam", "float32", TOL)
    assert report["feature_drift"] == {"max_rel": TOL.features, "passed": True}


def test_the_printed_report_and_the_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    refs = _refs()
    manifest = Manifest(class_names=("a", "b", "c"), input_shape=(8, 8, 3), feature_shape=(4, 4, 8),
                        target_layer="conv4")
    checked = verifier.Checked(Path("b"), Path("m"), manifest, [], [])
    good = verifier.report(checked, refs, _exact(refs), "gradcam", TOL, None, None)
    bad = verifier.report(checked, refs, _off(_exact(refs), "logit_head_cam_raw", 1.0), "gradcam", TOL, None, None)
    assert verifier._print_report(good, as_json=True) == 0
    assert capsys.readouterr().out == json.dumps(good, indent=2) + "\n"
    assert verifier._print_report(bad, as_json=False) == 1
    assert capsys.readouterr().out == "\n".join(report_text.lines(bad)) + "\n"


def test_a_convention_the_bundle_cannot_take_is_one_line_before_tensorflow(
        fruit_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = [str(fruit_bundle), "--model", "m.keras", "--images", str(tmp_path)]
    assert verifier.main([*base, "--channel-order", "BGR"]) == 2
    assert capsys.readouterr().err == ("error: --channel-order needs --preprocess too (the model's whole input "
                                       "convention)\n")
    assert verifier.main([*base, "--preprocess", "bogus=1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --preprocess 'bogus=1': unknown field(s) bogus") and err.count("\n") == 1
    with pytest.raises(SystemExit):
        verifier._parser().parse_args([*base, "--channel-order", "XYZ"])


def test_with_debug_the_error_is_raised_with_its_traceback(fruit_bundle: Path, tmp_path: Path) -> None:
    with pytest.raises(verifier.VerifyError, match="--channel-order needs --preprocess"):
        verifier.main([str(fruit_bundle), "--model", "m.keras", "--images", str(tmp_path), "--channel-order", "BGR",
                       "--debug"])


def _readme_block(starting: str) -> str:
    """docs/verify.md's indented block whose first line starts with `starting`, dedented."""
    lines = (Path(__file__).resolve().parent.parent / "docs" / "verify.md").read_text(encoding="utf-8").splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("    " + starting))
    block = []
    for line in lines[first:]:
        if line and not line.startswith("    "):
            break
        block.append(line[4:])
    return "\n".join(block).strip() + "\n"


def test_the_readme_shows_what_help_prints(monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """Every option the command takes is in docs/verify.md with its help, and nothing else: the block is
    `python -m tools.verify --help`'s output (usage under the command's own name, the description, every option)."""
    monkeypatch.setenv("COLUMNS", "120")
    with pytest.raises(SystemExit) as done:
        verifier.main(["--help"])
    assert done.value.code == 0
    printed = capsys.readouterr().out
    assert printed.startswith("usage: python -m tools.verify [-h] --model MODEL")
    assert "\n".join(line.rstrip() for line in printed.splitlines()) + "\n" == _readme_block("usage: python -m tools.v")


def test_the_sheet_captions_each_image_by_name_its_heatmap_by_method_and_its_overlay_by_top1() -> None:
    from tools.common import contact_sheet

    rng = np.random.default_rng(5)
    images = [rng.integers(0, 256, (24, 32, 3), np.uint8) for _ in range(2)]  # (H, W) = (24, 32)
    probabilities = np.array([[0.1, 0.7, 0.2], [0.55, 0.05, 0.4]], np.float32)
    cams = rng.uniform(0, 1, (2, 4, 4)).astype(np.float32)
    rows = verifier.sheet_rows([Path("a/x.png"), Path("b/y.jpg")], images, probabilities, cams,
                               ["Apfel", "Orange", "Tomate"], "gradcampp")
    assert [[caption for _, caption in row] for row in rows] == [["x.png", "gradcampp", "Orange 0.70"],
                                                                ["y.jpg", "gradcampp", "Apfel 0.55"]]
    for row, image, cam in zip(rows, images, cams, strict=True):
        assert row[0][0] is image
        assert row[1][0].shape == (24, 32, 3) and np.array_equal(row[1][0], contact_sheet.heatmap_rgb(cam, (32, 24)))
        assert np.array_equal(row[2][0], contact_sheet.overlay_rgb(image, cam))
    assert verifier.sheet_title("eigencam").split(" | ") == ["original", "eigencam heatmap",
                                                             "overlay (edge, score=logit)"]


def test_a_pytorch_or_onnx_reference_needs_logits_and_an_onnx_model_its_own_weights(
        fruit_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The fruit bundle's model ends in softmax: the PyTorch and ONNX references (which take outputs as logits) refuse
    it in one line, before torch is imported; an .onnx or .pt2 model with --weights is refused first."""
    before = set(sys.modules)  # other tests in this process may have imported torch already: only new imports count
    images = tmp_path / "images"
    images.mkdir()
    cv2.imwrite(str(images / "a.png"), np.full((8, 8, 3), 90, np.uint8))
    base = [str(fruit_bundle), "--images", str(images), "--sheet", str(tmp_path / "s.png")]
    refusals = {("--model", "torchvision.models:resnet18"): "error: the PyTorch reference takes the model's outputs "
                "as logits; this bundle's model ends in softmax\n",
                ("--model", str(tmp_path / "m.onnx")): "error: the ONNX reference takes the model's outputs as "
                "logits; this bundle's model ends in softmax\n",
                ("--model", str(tmp_path / "m.onnx"), "--weights", "w.pth"): "error: an .onnx model holds its "
                "weights: drop --weights\n",
                ("--model", str(tmp_path / "m.pt2")): "error: the PyTorch reference takes the model's outputs as "
                "logits; this bundle's model ends in softmax\n",
                ("--model", str(tmp_path / "m.pt2"), "--weights", "w.pth"): "error: a .pt2 program holds its "
                "weights: drop --weights\n"}
    for extra, message in refusals.items():
        assert verifier.main([*base, *extra]) == 2
        assert capsys.readouterr().err == message
    assert not any(name.split(".")[0] in ("tensorflow", "torch") for name in set(sys.modules) - before)
