"""Every CAM method on the device equals its TensorFlow GradientTape formula (tools/verify/tf_cams) on the original
Keras model, to float precision, for both scores; plus the properties the papers promise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge import Explainer
from edge.errors import MethodError
from edge.explain.cam import METHODS, TRUNK_PASS_METHODS, CamContext, get_method
from edge.explain.head import Head

CASES = ["fruit_bn", "fruit_pool", "fruit_conv4", "mobilenet_gap", "mobilenet_top", "dense_bn_dropout",
         "sigmoid_same_max", "same_avg_gmp", "gmp_linear", "gap_hardswish_silu", "gap_negative"]
SCORES = ["logit", "probability"]
# The methods the zoo has TensorFlow references of (tools/verify/tf_cams.py); the others are checked against
# pytorch-grad-cam and torch-cam in tests/test_cam_family.py
TF_METHODS = ("gradcam", "gradcampp", "xgradcam", "layercam", "hirescam", "eigencam", "cam")
HEAD_ONLY = ("gradcamelementwise", "eigengradcam", "kpcacam", "fem", "finercam", "shapleycam", "ablationcam",
             "randomcam")
GAP_CASES = {"mobilenet_gap", "mobilenet_top", "gap_negative"}
# Maps that are zero by definition: ReLU of gap_negative's logit gradient, negative everywhere, weighs every channel 0.
ZERO_MAPS = {("gap_negative", "logit", "gradcampp"), ("gap_negative", "logit", "layercam")}


def _ref(zoo: Path, case: str) -> dict[str, np.ndarray]:
    with np.load(zoo / "refs" / f"{case}.npz") as npz:
        return {name: npz[name] for name in npz.files}


def test_registry_has_the_family() -> None:
    assert set(METHODS) == {*TF_METHODS, *HEAD_ONLY, *TRUNK_PASS_METHODS}
    assert all(get_method(name) is METHODS[name] for name in METHODS)
    with pytest.raises(MethodError, match=r"^unknown CAM method 'gradcam\+\+'; choose one of gradcam, gradcampp, "
                                          r"xgradcam, layercam, hirescam, eigencam, cam, gradcamelementwise, "):
        get_method("gradcam++")


@pytest.mark.parametrize("score", SCORES)
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("method", sorted(TF_METHODS))
def test_method_equals_tensorflow(zoo: Path, case: str, score: str, method: str) -> None:
    ref = _ref(zoo, case)
    ex = Explainer.load(zoo / "bundles" / case, score=score)
    key = f"{score}_method_{method}"
    if method == "cam" and case not in GAP_CASES:
        assert key not in ref  # TensorFlow has no CAM for this head either
        with pytest.raises(MethodError, match=r"^method 'cam' needs a head of global average pooling followed by "
                           r"linear layers \(GAP -> Dense\); this model's head is not: use gradcam, which "
                           r"generalises it$"):
            ex.explain_input(ref["x"][0], method=method)
        return
    for i, x in enumerate(ref["x"]):
        r = ex.explain_input(x, method=method, target=int(ref[f"{score}_class_index"][i]))
        expected = ref[key][i]
        if (case, score, method) in ZERO_MAPS:  # TensorFlow's map and the device's must both be zeros (not NaN)
            assert not expected.any() and not r.cam_raw.any() and not r.cam.any(), (method, case, i)
            continue
        assert np.abs(expected).max() > 0, "a degenerate reference would make this test vacuous"
        # End to end, TFLite's activations differ from TensorFlow's by ~1e-6; Grad-CAM++'s alphas (ratios of gradient
        # powers) amplify that a little more than the other methods do.
        tolerance = 1e-3 if method == "gradcampp" else 1e-4
        assert np.abs(r.cam_raw - expected).max() <= tolerance * np.abs(expected).max(), (method, case, i)
        assert r.method == method and np.isfinite(r.cam).all()


@pytest.mark.parametrize("score", SCORES)
@pytest.mark.parametrize("case", CASES)
def test_methods_on_tensorflows_own_activations(zoo: Path, case: str, score: str) -> None:
    """Fed TensorFlow's own A, the NumPy head and every method reproduce TensorFlow's maps: the method is exact."""
    ref = _ref(zoo, case)
    head = Head.load(zoo / "bundles" / case / "head.npz")
    for i in range(len(ref["x"])):
        A, c = ref[f"{score}_activations"][i], int(ref[f"{score}_class_index"][i])
        hp = head.forward(A)
        ctx = CamContext(A, head, hp, head.score_gradient(hp, c, score), c)
        for method in METHODS:
            if f"{score}_method_{method}" not in ref:
                continue
            expected = ref[f"{score}_method_{method}"][i]
            # Grad-CAM++'s alpha = 1 / (2 + sum(A) g) is ill-conditioned where a BatchNorm target makes sum(A) large
            # and negative: the ~1e-7 gradient differences between the two backward passes grow to ~2e-4 there.
            tolerance = 1e-3 if method == "gradcampp" else 1e-4
            assert np.abs(get_method(method).raw(ctx) - expected).max() <= tolerance * np.abs(expected).max(), method


@pytest.mark.parametrize("case", ["mobilenet_gap", "gap_negative"])  # gap_negative: maps negative, cam all zeros
def test_gradcam_equals_cam_up_to_scale_on_a_gap_head(zoo: Path, case: str) -> None:
    ref = _ref(zoo, case)
    ex = Explainer.load(zoo / "bundles" / case)
    h, w, _ = ex.manifest.feature_shape
    for x in ref["x"]:
        grad = ex.explain_input(x, method="gradcam")
        cam = ex.explain_input(x, method="cam")
        np.testing.assert_allclose(cam.cam_raw, grad.cam_raw * h * w, rtol=1e-4, atol=1e-4 * np.abs(cam.cam_raw).max())
        np.testing.assert_allclose(cam.cam, grad.cam, atol=1e-5)


def test_the_trunk_pass_methods_are_the_methods_that_run_trunk_passes(zoo: Path) -> None:
    """TRUNK_PASS_METHODS (each method's needs_trunk flag, which the imx500 source refuses by) names exactly the
    registered methods whose map runs the feature model on perturbed inputs, each as many times as its trunk_passes."""
    ex = Explainer.load(zoo / "bundles" / "gap_negative")  # k = 16 channels: SS-CAM's 1 + 35 k passes stay cheap
    x = _ref(zoo, "gap_negative")["x"][0]
    ran = {}
    for name in METHODS:
        before = 0 if ex._trunk is None else ex._trunk.passes
        ex.explain_input(x, method=name)
        ran[name] = (0 if ex._trunk is None else ex._trunk.passes) - before
    assert {name for name, passes in ran.items() if passes} == set(TRUNK_PASS_METHODS)
    k = ex.head.input_shape[-1]
    assert {name: ran[name] for name in TRUNK_PASS_METHODS} == {
        name: METHODS[name].trunk_passes(k) for name in TRUNK_PASS_METHODS}  # type: ignore[attr-defined]


def _context(A: np.ndarray, head: Head) -> CamContext:
    hp = head.forward(A)
    c = int(np.argmax(hp.probabilities))
    return CamContext(A, head, hp, head.score_gradient(hp, c, "logit"), c)


@pytest.mark.parametrize("method", sorted(set(METHODS) - {"cam", *TRUNK_PASS_METHODS}))
def test_degenerate_maps_and_no_side_effects(zoo: Path, method: str) -> None:
    head = Head.load(zoo / "bundles" / "fruit_bn" / "head.npz")
    h, w, k = head.input_shape
    for flat in (np.zeros(head.input_shape, np.float32), np.broadcast_to(np.arange(k, dtype=np.float32), (h, w, k))):
        raw = get_method(method).raw(_context(np.ascontiguousarray(flat), head))  # no spatial variation at all
        assert raw.shape == (h, w) and raw.dtype == np.float32 and np.isfinite(raw).all()  # CamMethod.raw's contract
        if method == "eigencam":
            assert np.all(raw == 0)  # no principal direction to show
    rng = np.random.default_rng(0)
    A = rng.random(head.input_shape, dtype=np.float32)
    before = A.copy()
    raw = get_method(method).raw(_context(A, head))
    assert raw.shape == (h, w) and raw.dtype == np.float32
    np.testing.assert_array_equal(A, before)  # the caller's activations are never modified


def test_eigencam_is_class_agnostic_and_sign_stable(zoo: Path) -> None:
    ref = _ref(zoo, "fruit_bn")
    ex = Explainer.load(zoo / "bundles" / "fruit_bn")
    x = ref["x"][0]
    maps = [ex.explain_input(x, method="eigencam", target=c).cam_raw for c in range(ex.manifest.num_classes)]
    assert all(np.array_equal(maps[0], m) for m in maps[1:])
    A = ex.features(x)
    flipped = get_method("eigencam").raw(_context(A, ex.head))
    np.testing.assert_allclose(flipped, maps[0], rtol=1e-5, atol=1e-6)
    activity = A.sum(axis=-1)
    assert float(((activity - activity.mean()) * maps[0]).sum()) >= 0  # the documented sign rule


def test_top_k_and_target_with_any_method(zoo: Path) -> None:
    ref = _ref(zoo, "fruit_bn")
    ex = Explainer.load(zoo / "bundles" / "fruit_bn")
    for method in ("gradcampp", "layercam"):
        top = ex.explain_input(ref["x"][0], method=method, top_k=3)
        assert [e.method for e in top] == [method] * 3 and len({e.class_index for e in top}) == 3
        chosen = ex.explain_input(ref["x"][0], method=method, target=top[-1].class_index)
        np.testing.assert_array_equal(chosen.cam_raw, top[-1].cam_raw)


def test_edge_run_uses_the_chosen_method_and_target(tmp_path: Path) -> None:
    import json

    from conftest import REPO, run_python

    proc = run_python("-m", "edge", "run", "--model", str(REPO / "models" / "fruit"), "--source",
                      f"images:{REPO / 'samples'}", "--log-dir", str(tmp_path), "--no-display", "--method", "layercam",
                      "--target", "Tomate", timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    records = [json.loads(line) for line in (tmp_path / "predictions.jsonl").read_text().splitlines()]
    assert len(records) >= 10 and {r["method"] for r in records} == {"layercam"}
    bad = run_python("-m", "edge", "run", "--model", str(REPO / "models" / "fruit"), "--source", "synthetic",
                     "--no-display", "--method", "gradcam++", timeout=120)
    assert bad.returncode == 2 and "invalid choice: 'gradcam++'" in bad.stderr
