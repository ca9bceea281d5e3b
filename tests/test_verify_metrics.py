"""tools.verify's metrics by hand: map_metrics(), the near ties, _within()'s bounds, the probability map's scale, the
relative differences and the correlation (the verdict built on them: tests/test_verify_judge.py). In-process, so that
mutation testing selects these tests."""

from __future__ import annotations

import numpy as np
import pytest

from tools.verify import verifier


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


def test_pearson_of_small_maps_is_their_correlation() -> None:
    rng = np.random.default_rng(3)
    a = 1e-3 * rng.normal(size=(5, 5))
    b = a + 1e-3 * rng.normal(size=(5, 5))
    assert verifier._pearson(a, b) == pytest.approx(np.corrcoef(a.ravel(), b.ravel())[0, 1], rel=1e-9)

