"""The device's Grad-CAM equals TensorFlow's GradientTape Grad-CAM on the original Keras model, to float precision.

References come from tools.verify.testmodels (TensorFlow, in a subprocess); the edge side runs here, with the real
TFLite interpreter, in a process without TensorFlow. TensorFlow's input is made by each model's own ecosystem
(tools/verify/ecosystem.py: preprocess_input, Keras layers, cv2.imread), never by edge's Preprocessor.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge import Explainer
from edge.explain.head import Head
from edge.explain.head_ops import Activation, Pool2D

FLOAT_CASES = ["fruit_bn", "fruit_pool", "fruit_conv4", "mobilenet_gap", "mobilenet_top", "dense_bn_dropout",
               "legacy_h5", "json_weights", "sigmoid_same_max", "same_avg_gmp", "gmp_linear", "gap_hardswish_silu",
               "gap_negative"]
SCORES = ["logit", "probability"]


def _ref(zoo: Path, case: str) -> dict[str, np.ndarray]:
    with np.load(zoo / "refs" / f"{case}.npz") as npz:
        return {name: npz[name] for name in npz.files}


@pytest.mark.parametrize("score", SCORES)
@pytest.mark.parametrize("case", FLOAT_CASES)
def test_gradcam_equals_gradient_tape(zoo: Path, case: str, score: str) -> None:
    ref = _ref(zoo, case)
    ex = Explainer.load(zoo / "bundles" / case, score=score)
    for i, x in enumerate(ref["x"]):
        r = ex.explain_input(x)
        expected = ref[f"{score}_cam_raw"][i]
        assert r.class_index == ref[f"{score}_class_index"][i]
        np.testing.assert_allclose(r.probabilities, ref[f"{score}_probabilities"][i], rtol=0, atol=1e-5)
        assert np.abs(expected).max() > 0, "a degenerate reference would make this test vacuous"
        assert np.abs(r.cam_raw - expected).max() <= 1e-4 * np.abs(expected).max()


@pytest.mark.parametrize("score", SCORES)
@pytest.mark.parametrize("case", FLOAT_CASES)
def test_head_gradient_equals_gradient_tape(zoo: Path, case: str, score: str) -> None:
    """The full dScore/dA from the NumPy head, fed TensorFlow's own activations, equals tape.gradient."""
    ref = _ref(zoo, case)
    head = Head.load(zoo / "bundles" / case / "head.npz")
    for i in range(len(ref["x"])):
        hp = head.forward(ref[f"{score}_activations"][i])
        c = int(ref[f"{score}_class_index"][i])
        dz = head.score_gradient(hp, c, score)
        expected = ref[f"{score}_gradient"][i]
        tolerance = 1e-4 * np.abs(expected).max()
        assert np.abs(head.gradient(hp, dz) - expected).max() <= tolerance
        fast = head.weights(hp, c, dz)  # the cheap path Grad-CAM uses
        np.testing.assert_allclose(fast, expected.mean(axis=(0, 1)), rtol=0, atol=tolerance)


@pytest.mark.parametrize("case", FLOAT_CASES)
def test_device_path_from_the_frame_equals_gradient_tape_on_the_ecosystems_input(zoo: Path, case: str) -> None:
    """explain(frame) preprocesses as the manifest says; TensorFlow was fed what the model's ecosystem makes of the
    same frame. A preset that reproduces the convention wrongly (an order, a mean, a scale) fails here."""
    ref = _ref(zoo, case)
    ex = Explainer.load(zoo / "bundles" / case)
    for i, frame in enumerate(ref["frames"]):
        np.testing.assert_allclose(ex.preprocess(frame), ref["x"][i], rtol=1e-5, atol=1e-5)
        r = ex.explain(frame)
        expected = ref["logit_cam_raw"][i]
        assert r.class_index == ref["logit_class_index"][i]
        np.testing.assert_allclose(r.probabilities, ref["logit_probabilities"][i], rtol=0, atol=1e-5)
        assert np.abs(r.cam_raw - expected).max() <= 1e-4 * np.abs(expected).max()


def test_the_zoo_has_every_head_form(zoo: Path) -> None:
    """The forms issue 26 found untested stay in the zoo: BatchNorm before a max-pool in the head, sigmoid and linear
    outputs, SAME max and average pooling with an odd padding total, global max pooling."""
    def ops(case: str) -> list[str]:
        head = Head.load(zoo / "bundles" / case / "head.npz")
        return [type(op).__name__ + (f"/{op.mode}" if hasattr(op, "mode") else "")
                + (f"/{op.padding}" if hasattr(op, "padding") else "") for op in head.ops]

    assert ops("fruit_conv4")[:2] == ["Affine", "Pool2D/max/valid"]
    assert Head.load(zoo / "bundles" / "sigmoid_same_max" / "head.npz").output_activation == "sigmoid"
    assert ops("sigmoid_same_max")[0] == "Pool2D/max/same"
    assert ops("same_avg_gmp")[:3] == ["Pool2D/avg/same", "Affine", "Reduce/max"]
    assert ops("gmp_linear") == ["Reduce/max", "Dense"]
    assert Head.load(zoo / "bundles" / "gmp_linear" / "head.npz").output_activation == "none"
    # Keras 3's hard_swish and silu as hidden activations (MobileNet-style heads), through the generic backward
    hidden = Head.load(zoo / "bundles" / "gap_hardswish_silu" / "head.npz").ops
    assert [op.name for op in hidden if isinstance(op, Activation)] == ["hardswish", "silu"]
    for case in ("sigmoid_same_max", "same_avg_gmp"):  # an odd SAME total: a reversed split moves every window
        head = Head.load(zoo / "bundles" / case / "head.npz")
        pool = head.ops[0]
        assert isinstance(pool, Pool2D)
        for size, window, stride in zip(head.input_shape[:2], pool.pool, pool.strides, strict=True):
            total = (-(-size // stride) - 1) * stride + window - size  # TensorFlow's SAME padding total
            assert total % 2 == 1, (case, size, window, stride)


def test_explain_frame_is_preprocess_then_explain_input(zoo: Path) -> None:
    ref = _ref(zoo, "fruit_bn")
    ex = Explainer.load(zoo / "bundles" / "fruit_bn")
    frame = ref["frames"][0]
    before = frame.copy()
    from_frame = ex.explain(frame)
    from_input = ex.explain_input(ex.preprocess(frame))
    np.testing.assert_array_equal(frame, before)  # the caller's frame is never modified
    np.testing.assert_allclose(from_frame.cam_raw, from_input.cam_raw, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(from_frame.cam_raw, ref["logit_cam_raw"][0], rtol=0,
                               atol=1e-4 * np.abs(ref["logit_cam_raw"][0]).max())


def test_target_and_top_k(zoo: Path) -> None:
    ex = Explainer.load(zoo / "bundles" / "fruit_bn")
    frame = _ref(zoo, "fruit_bn")["frames"][1]
    top = ex.explain(frame, top_k=3)
    assert [r.label for r in top] == [ex.class_names[i] for i in np.argsort(-top[0].probabilities)]
    for r in top:
        by_name = ex.explain(frame, target=r.label)
        assert by_name.class_index == r.class_index
        np.testing.assert_allclose(by_name.cam_raw, r.cam_raw, rtol=1e-6)
    assert not np.allclose(top[0].cam_raw, top[1].cam_raw)  # different classes, different maps
    assert ex.explain(frame).class_index == top[0].class_index


def test_cam_is_normalised_relu_of_cam_raw(zoo: Path) -> None:
    checked_positive = 0
    for case in ("mobilenet_gap", "fruit_bn"):
        ex = Explainer.load(zoo / "bundles" / case)
        for frame in _ref(zoo, case)["frames"]:
            for r in ex.explain(frame, top_k=ex.manifest.num_classes):
                assert r.cam.dtype == np.float32 and r.cam.shape == ex.manifest.feature_shape[:2]
                assert set(r.timings) == {"preprocess", "features", "head", "cam"}
                positive = np.maximum(r.cam_raw, 0)
                if positive.max() > 0:
                    np.testing.assert_allclose(r.cam, positive / positive.max(), rtol=1e-6)
                    checked_positive += 1
                else:  # an all-negative map (untrained weights) must give zeros, not NaN
                    assert np.all(r.cam == 0)
    assert checked_positive > 0
