"""The tests' comparison helpers (tests/comparisons.py): an all-zero or flat reference fails with a message instead of
a NaN, and "equal up to a positive scale" holds for the issue's all-negative maps and fails for a sign flip."""

from __future__ import annotations

import numpy as np
import pytest
from comparisons import DegenerateReferenceError, correlation, positive_scale, rel_diff, rel_diff_up_to_positive_scale

# The raw CAM and Grad-CAM maps of one frame on a random MobileNetV2 whose maps were all negative: normalised, both
# were zeros, and a relative difference of the normalised maps was 0 / 0.
CAM = np.array([[-0.03819386, -0.03233681], [-0.03706257, -0.04365705]], np.float32)
GRADCAM = np.array([[-0.00954846, -0.0080842], [-0.00926564, -0.01091425]], np.float32)


def test_an_all_zero_reference_is_an_error_not_nan() -> None:
    zero = np.zeros((2, 2), np.float32)
    message = r"^the reference \(2, 2\) is all zeros: no relative difference$"
    with pytest.raises(DegenerateReferenceError, match=message):
        rel_diff(zero, zero)
    with pytest.raises(DegenerateReferenceError, match="no scale can be fitted"):
        positive_scale(CAM, zero)
    with pytest.raises(DegenerateReferenceError, match="flat map"):
        correlation(CAM, np.ones((2, 2)))
    assert rel_diff(np.array([1.0, 2.5]), np.array([1.0, 2.0])) == pytest.approx(0.25)


def test_all_negative_maps_compare_up_to_a_positive_scale() -> None:
    assert positive_scale(CAM, GRADCAM) == pytest.approx(4.0, rel=1e-5)  # h * w = 4
    assert rel_diff_up_to_positive_scale(CAM, GRADCAM) < 1e-5
    with pytest.raises(AssertionError, match="not a positive multiple"):
        rel_diff_up_to_positive_scale(-CAM, GRADCAM)
    other = CAM.copy()
    other[0, 0] *= 1.01  # one cell 1% off: no scale hides it
    assert rel_diff_up_to_positive_scale(other, GRADCAM) > 1e-3
