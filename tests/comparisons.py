"""How the tests compare maps and arrays with references: relative differences that fail with a message where the
reference gives no scale (all zeros) instead of returning NaN, and "equal up to a positive scale" judged on the raw
maps (a normalised heatmap is all zeros wherever a random model's map is all negative, and compares nothing)."""

from __future__ import annotations

import numpy as np


class DegenerateReferenceError(AssertionError):
    """The reference cannot judge: all zeros, or flat."""


def rel_diff(actual: np.ndarray, expected: np.ndarray) -> float:
    """max |actual - expected| / max |expected|; fails when expected is all zeros (nothing to be relative to)."""
    peak = float(np.abs(expected).max())
    if not peak > 0:
        raise DegenerateReferenceError(f"the reference {expected.shape} is all zeros: no relative difference")
    return float(np.abs(actual - expected).max()) / peak


def positive_scale(actual: np.ndarray, expected: np.ndarray) -> float:
    """The least-squares s in actual ~ s * expected; fails unless s > 0 (a map of the opposite sign is not the same
    map) or when expected is all zeros."""
    e, a = expected.astype(np.float64).ravel(), actual.astype(np.float64).ravel()
    energy = float(e @ e)
    if not energy > 0:
        raise DegenerateReferenceError(f"the reference {expected.shape} is all zeros: no scale can be fitted to it")
    scale = float(a @ e) / energy
    assert scale > 0, f"actual ~ {scale:.3g} x the reference: not a positive multiple of it"
    return scale


def rel_diff_up_to_positive_scale(actual: np.ndarray, expected: np.ndarray) -> float:
    """rel_diff(actual, s * expected) with s = positive_scale(actual, expected): 0 for an exact positive multiple."""
    return rel_diff(actual, positive_scale(actual, expected) * expected.astype(np.float64))


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """The Pearson correlation of two maps; fails when either is flat (no correlation is defined)."""
    x, y = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    x, y = x - x.mean(), y - y.mean()
    norms = float(np.sqrt((x @ x) * (y @ y)))
    if not norms > 0:
        raise DegenerateReferenceError(f"a flat map {a.shape}: no correlation is defined")
    return float(x @ y) / norms
