"""Faithfulness scores' edge cases on the demo bundle: every one a defined answer, never NaN or a traceback."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from conftest import REPO

from edge import Explainer
from edge.explain.faithfulness import NOTHING_POSITIVE, Faithfulness, FaithfulnessScorer, random_cam_raw
from edge.explain.head import Head
from edge.explain.head_ops import Dense
from edge.explain.trunk_passes import TrunkPasses

FRUIT = REPO / "models" / "fruit"


@pytest.fixture(scope="module")
def explainer() -> Explainer:
    return Explainer.load(FRUIT, num_threads=1)


@pytest.fixture(scope="module")
def scorer(explainer: Explainer) -> FaithfulnessScorer:
    return FaithfulnessScorer(TrunkPasses.for_explainer(explainer))


def _finite(result: Faithfulness) -> None:
    assert all(math.isfinite(v) for v in result.scores.values()), result.scores
    assert np.isfinite(result.deletion).all() and np.isfinite(result.insertion).all()


def _frame(size: int = 120) -> np.ndarray:
    rng = np.random.default_rng(3)
    return rng.integers(0, 256, (size, size, 3), dtype=np.uint8)  # (size, size, 3) uint8


def test_a_map_with_nothing_positive(explainer: Explainer, scorer: FaithfulnessScorer) -> None:
    x = explainer.preprocess(_frame())
    for cam_raw in (np.full((12, 12), -1.0, np.float32), np.zeros((12, 12), np.float32),
                    np.full((12, 12), np.nan, np.float32)):
        result = scorer(x, cam_raw, 0)
        assert result.note == NOTHING_POSITIVE
        assert set(result.scores) == {"confidence_change", "drop_in_confidence", "increase_in_confidence"}
        assert result.passes == 2
        _finite(result)


@pytest.mark.parametrize("size", [120, 16])  # a frame larger than the model input, and one smaller
def test_top_class_other_classes_and_top_k(explainer: Explainer, scorer: FaithfulnessScorer, size: int) -> None:
    x = explainer.preprocess(_frame(size))
    for e in explainer.explain_input(x, top_k=3):  # the top class and the two others
        result = scorer(x, e.cam_raw, e.class_index)
        assert result.note is None and result.class_index == e.class_index
        assert set(result.scores) >= {"deletion_auc", "insertion_auc"}
        assert result.passes == 41 and len(result.deletion) == 21  # 100x100 pixels in 20 steps of 500
        assert result.deletion[-1] == result.insertion[0]  # both the baseline's score
        _finite(result)


def test_random_floor_and_logit_score(explainer: Explainer) -> None:
    passes = TrunkPasses.for_explainer(explainer)
    x = explainer.preprocess(_frame())
    cam_raw = random_cam_raw(explainer.features(x), np.random.default_rng(0))
    assert cam_raw.shape == (12, 12) and cam_raw.dtype == np.float32
    _finite(FaithfulnessScorer(passes, score="logit")(x, cam_raw, 1))
    with pytest.raises(ValueError, match="score must be"):
        FaithfulnessScorer(passes, score="margin")


def test_one_class_model(explainer: Explainer) -> None:
    """A one-output sigmoid head on the fruit trunk: its probability moves, and every score is defined."""
    last = explainer.head.ops[-1]
    assert isinstance(last, Dense)
    ops = [*explainer.head.ops[:-1], Dense(last.kernel[:, :1].copy(), last.bias[:1].copy())]
    head = Head(ops, explainer.head.input_shape, "sigmoid")
    manifest = dataclasses.replace(explainer.manifest, class_names=("Apfel",), output_activation="sigmoid")
    scorer = FaithfulnessScorer(TrunkPasses(FRUIT / "features.tflite", manifest, head))
    x = explainer.preprocess(_frame())
    result = scorer(x, explainer.explain_input(x, target=0).cam_raw, 0)
    assert result.note is None
    _finite(result)
