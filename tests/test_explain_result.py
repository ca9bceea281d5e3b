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
