"""The per-frame Grad-CAM weights of the load-time plan (edge/explain/weight_plan.py) equal the spatial mean of the full
gradient, on every head form of the zoo (Flatten with max-pooling, Flatten with several Dense layers, GAP -> Dense), for
every class and both scores; and what the plan hands out cannot be changed by a caller."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.explain import weight_plan
from edge.explain.head import Head

CASES = ["fruit_bn", "fruit_pool", "dense_bn_dropout", "mobilenet_gap", "mobilenet_top"]


# The heads with Dense -> ReLU -> Dense after the reduction, whose plan has two forms: the per-class matrices made at
# load (small heads) and the row times ReLU's mask (heads too big to copy per class).
RELU_CASES = ["fruit_bn", "fruit_pool"]
FORMS = [(case, True) for case in CASES] + [(case, False) for case in RELU_CASES]


@pytest.mark.parametrize(("case", "per_class"), FORMS)
def test_plan_weights_equal_the_full_gradient_mean(
    zoo: Path, case: str, per_class: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not per_class:  # the form of heads too big to copy per class, chosen when the head loads
        monkeypatch.setattr(weight_plan, "_PER_CLASS_MAX", 0)
    head = Head.load(zoo / "bundles" / case / "head.npz")
    assert head._plan is not None, "every zoo head has a pooling/affine spatial part and Dense layers"
    assert (head._plan.relu_at is not None) == (case in RELU_CASES)
    assert (head._plan.per_class is not None) == (per_class and case in RELU_CASES), "3 classes are few enough to copy"
    rng = np.random.default_rng(3)
    A = rng.random(head.input_shape, dtype=np.float32) * 2.0  # relu units both on and off
    hp = head.forward(A)
    for c in range(head.num_classes):
        for score in ("logit", "probability"):
            dz = head.score_gradient(hp, c, score)
            expected = head.gradient(hp, dz).astype(np.float64).mean(axis=(0, 1))
            tolerance = 1e-5 * np.abs(expected).max() + 1e-9
            np.testing.assert_allclose(head.weights(hp, c, dz), expected, rtol=0, atol=tolerance)
        fast = head.weights(hp, c)
        expected = head.gradient(hp, head.score_gradient(hp, c, "logit")).astype(np.float64).mean(axis=(0, 1))
        np.testing.assert_allclose(fast, expected, rtol=0, atol=1e-5 * np.abs(expected).max() + 1e-9)
        assert fast.dtype == np.float32 and fast.shape == (head.input_shape[2],)


def test_shared_rows_are_read_only(zoo: Path) -> None:
    """A linear head's logit weights are a row of the plan's matrix, not a copy: a caller must not edit it."""
    head = Head.load(zoo / "bundles" / "mobilenet_gap" / "head.npz")
    hp = head.forward(np.ones(head.input_shape, np.float32))
    weights = head.weights(hp, 0)
    with pytest.raises(ValueError, match="read-only"):
        weights *= 2.0
