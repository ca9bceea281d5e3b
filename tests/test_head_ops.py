"""The NumPy head's building blocks against finite differences, and the degenerate maps that must give zeros."""

from __future__ import annotations

import numpy as np
import pytest

from edge.explain.cam import normalise
from edge.explain.head_ops import Affine, Pool2D, Reduce


def _numerical_vjp(op: Pool2D | Reduce, x: np.ndarray, g: np.ndarray, eps: float = 1e-2) -> np.ndarray:
    x64 = x.astype(np.float64)
    out = np.zeros_like(x64)
    for idx in np.ndindex(x.shape):
        plus, minus = x64.copy(), x64.copy()
        plus[idx] += eps
        minus[idx] -= eps
        f_plus = float((op.forward(plus.astype(np.float32)) * g).sum())
        f_minus = float((op.forward(minus.astype(np.float32)) * g).sum())
        out[idx] = (f_plus - f_minus) / (2 * eps)
    return out


@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize(("pool", "strides", "padding"), [
    ((2, 2), (2, 2), "valid"), ((3, 3), (2, 2), "same"), ((2, 3), (1, 2), "valid"), ((3, 2), (3, 1), "same"),
    ((3, 3), (1, 1), "same"),  # padding on all four sides
])
def test_pool_backward_matches_finite_differences(mode: str, pool: tuple[int, int], strides: tuple[int, int],
                                                  padding: str) -> None:
    rng = np.random.default_rng(0)
    # distinct values 0.1 apart: a step of eps = 0.01 never changes which input is a maximum
    x = rng.permutation(7 * 6 * 2).reshape(7, 6, 2).astype(np.float32) * 0.1
    op = Pool2D(mode, pool, strides, padding)
    y = op.forward(x)
    g = rng.normal(size=y.shape).astype(np.float32)
    np.testing.assert_allclose(op.backward(x, y, g), _numerical_vjp(op, x, g), atol=2e-3)


def test_max_pool_ties_go_to_the_first_maximum() -> None:
    """TensorFlow's MaxPoolGrad gives a tied window's gradient to its first maximum in row-major order."""
    x = np.zeros((2, 2, 1), np.float32)  # e.g. four ReLU zeros after a BatchNorm: all equal
    op = Pool2D("max", (2, 2), (2, 2), "valid")
    g = op.backward(x, op.forward(x), np.ones((1, 1, 1), np.float32))
    np.testing.assert_array_equal(g[:, :, 0], [[1, 0], [0, 0]])


def test_global_max_splits_ties_evenly() -> None:
    """tf.reduce_max's gradient shares the gradient between tied maxima."""
    x = np.array([[[1.0], [3.0]], [[3.0], [2.0]]], np.float32)
    op = Reduce("max")
    g = op.backward(x, op.forward(x), np.array([1.0], np.float32))
    np.testing.assert_array_equal(g[:, :, 0], [[0, 0.5], [0.5, 0]])


def test_spatial_sum_of_gradient_is_preserved_by_pooling_and_scaled_by_affine() -> None:
    """What the cheap Grad-CAM path relies on."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(8, 8, 3)).astype(np.float32)
    for op in (Pool2D("max", (2, 2), (2, 2), "valid"), Pool2D("avg", (3, 3), (2, 2), "same")):
        g = rng.normal(size=op.forward(x).shape).astype(np.float32)
        np.testing.assert_allclose(op.backward(x, op.forward(x), g).sum(axis=(0, 1)), g.sum(axis=(0, 1)), rtol=1e-5)
    affine = Affine(np.array([2.0, -1.0, 0.5], np.float32), np.zeros(3, np.float32))
    g = rng.normal(size=x.shape).astype(np.float32)
    np.testing.assert_allclose(affine.backward(x, affine.forward(x), g).sum(axis=(0, 1)),
                               g.sum(axis=(0, 1)) * affine.scale, rtol=1e-5)


@pytest.mark.parametrize("raw", [
    np.zeros((4, 4), np.float32),
    -np.ones((4, 4), np.float32),
    np.full((4, 4), 1e-30, np.float32),
    np.array([[np.nan, 1.0], [np.inf, 0.0]], np.float32),
    np.array([[np.inf, 1.0], [0.5, 0.0]], np.float32),  # an infinite peak: no finite scale to divide by
    np.full((3, 2), 1e-12, np.float32),  # at the threshold: still nothing
    np.zeros((0, 4), np.float32),
])
def test_degenerate_maps_normalise_to_zeros(raw: np.ndarray) -> None:
    cam = normalise(raw)
    assert cam.dtype == np.float32 and cam.shape == raw.shape
    assert np.all(cam == 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_normalise_is_relu_then_the_plain_division_by_the_maximum(dtype: type) -> None:
    """Bit for bit what the definition computes, on maps of several shapes and layouts (a transposed view, negative
    zeros, a peak anywhere) and for another dtype's map, through normalise's other path."""
    rng = np.random.default_rng(5)
    maps = [rng.standard_normal(shape).astype(dtype) for shape in ((4, 4), (7, 7), (3, 5))]
    maps.append(np.array([[0.7]], dtype))
    maps.append(rng.standard_normal((6, 4)).astype(dtype).T)  # not C-contiguous
    maps.append(np.array([[-0.0, 0.25], [3.0, -2.0]], dtype))
    for raw in maps:
        assert raw.max() > 0  # a peak to divide by (the degenerate maps are the test above)
        expected = (np.maximum(raw, 0) / float(raw.max())).astype(np.float32)
        cam = normalise(raw)
        assert cam.dtype == np.float32 and cam.shape == raw.shape
        np.testing.assert_array_equal(cam.view(np.uint32), expected.view(np.uint32))


def test_maps_of_many_shapes_keep_a_bounded_cache() -> None:
    """Maps of many shapes in turn: normalise keeps nothing per shape (it has no cache left to bound)."""
    from edge.explain.cam import base

    for side in range(1, 100):
        raw = np.arange(side * 2, dtype=np.float32).reshape(side, 2)
        np.testing.assert_array_equal(normalise(raw), raw / raw.max())
        assert not hasattr(base, "_ZEROS")


def test_a_nan_anywhere_gives_zeros() -> None:
    for at in range(4):
        raw = np.arange(4, dtype=np.float32).reshape(2, 2)
        raw.flat[at] = np.nan
        assert np.all(normalise(raw) == 0), at


def test_normalise_does_not_touch_its_input() -> None:
    raw = np.array([[-1.0, 2.0], [0.5, 4.0]], np.float32)
    before = raw.copy()
    np.testing.assert_allclose(normalise(raw), [[0, 0.5], [0.125, 1.0]])
    np.testing.assert_array_equal(raw, before)
