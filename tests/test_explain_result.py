"""The result object of explain(): its score is the explained class's differentiated score (the logit or the
probability the bundle's score names), for the top class, a chosen target and every class of top_k."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge import Explainer


@pytest.mark.parametrize("score", ["logit", "probability"])
def test_score_is_the_explained_class_score(zoo: Path, score: str) -> None:
    ex = Explainer.load(zoo / "bundles" / "fruit_bn", score=score)
    rng = np.random.default_rng(5)
    frame = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)  # (H, W, 3) uint8 RGB
    hp = ex.head.forward(ex.features(ex.preprocess(frame)))
    expected = hp.logits if score == "logit" else hp.probabilities  # (C,) float32
    results = [ex.explain(frame), ex.explain(frame, target=1), *ex.explain(frame, top_k=ex.manifest.num_classes)]
    for r in results:
        assert isinstance(r.score, float)
        assert r.score == float(expected[r.class_index]), (r.class_index, r.score)
    assert {r.class_index for r in results[2:]} == set(range(ex.manifest.num_classes))


CASES = ["fruit_bn", "fruit_pool", "mobilenet_gap", "mobilenet_top", "dense_bn_dropout", "sigmoid_same_max",
         "same_avg_gmp", "gmp_linear", "gap_hardswish_silu"]


@pytest.mark.parametrize("case", CASES)
def test_the_default_calls_own_path_gives_the_general_paths_result(
    zoo: Path, case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """explain(frame) with the defaults (Grad-CAM of the top class's logit) takes a path of its own, kept short for
    speed (issue 25); it must give exactly what the general path (explain_input, through GradCAM.raw and its context
    object) gives, on every head form, and must not build that context object."""
    import edge.explain.explainer as explainer_module

    ex = Explainer.load(zoo / "bundles" / case, score="logit")
    rng = np.random.default_rng(11)
    frames = [rng.integers(0, 256, (90, 130, 3), dtype=np.uint8) for _ in range(3)]  # (H, W, 3) uint8 RGB
    general = [ex.explain_input(ex.preprocess(frame)) for frame in frames]

    def no_context(*args: object) -> None:
        raise AssertionError("the default call built a CamContext")

    monkeypatch.setattr(explainer_module, "CamContext", no_context)
    for frame, expected in zip(frames, general, strict=True):
        r = ex.explain(frame)
        assert (r.class_index, r.label, r.method) == (expected.class_index, expected.label, "gradcam")
        assert r.score == expected.score and isinstance(r.score, float)
        np.testing.assert_array_equal(r.probabilities, expected.probabilities)
        np.testing.assert_array_equal(r.cam_raw, expected.cam_raw)
        np.testing.assert_array_equal(r.cam, expected.cam)
        assert r.cam.dtype == r.cam_raw.dtype == np.float32
        assert list(r.timings) == ["preprocess", "features", "head", "cam"]
        assert all(ms > 0 for ms in r.timings.values()), r.timings
    with pytest.raises(AssertionError, match="CamContext"):  # every other call takes the general path
        ex.explain(frames[0], top_k=1)
