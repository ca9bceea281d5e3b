"""The head's FORWARD passes against references that share no code with it: hand-computed windows, textbook formulas
in float64, and the head's gradient and Grad-CAM weights against finite differences of those references.

tests/test_head_ops.py checks each backward against the op's own forward, and the parity zoo checks the whole head
against TensorFlow; this file is what fails when a forward is wrong in a way both share (issue 26). A head built,
saved and loaded, and the head files the device refuses: tests/test_head_save_load.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from edge.explain import activations
from edge.explain.head import Head
from edge.explain.head_ops import Activation, Affine, Dense, Pool2D, Reduce


def flatten_dense(kernel: np.ndarray, bias: np.ndarray, positions: int) -> Dense:
    """A Dense after Flatten as the exporter writes it: with its kernel's spatial sums (k, n_out)."""
    dense = Dense(kernel, bias)
    dense.spatial_sum = kernel.reshape(positions, -1, kernel.shape[1]).sum(axis=0, dtype=np.float64).astype(np.float32)
    return dense


def _column(values: list[list[float]]) -> np.ndarray:
    return np.array(values, np.float32)[:, :, None]  # (h, w, 1)


def test_same_max_pool_pads_the_odd_row_and_column_at_the_bottom_and_right() -> None:
    """TensorFlow's SAME: 3x3 -> 2x2 with a 2x2 window, the one padding row/column after the input (-inf for max)."""
    x = _column([[0, 1, 2], [3, 4, 5], [6, 7, 8]])
    y = Pool2D("max", (2, 2), (2, 2), "same").forward(x)
    np.testing.assert_array_equal(y[:, :, 0], [[4, 5], [7, 8]])  # windows {0,1,3,4} {2,5} {6,7} {8}


def test_same_max_pool_with_negative_inputs_never_sees_the_padding() -> None:
    x = -_column([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    y = Pool2D("max", (2, 2), (2, 2), "same").forward(x)
    np.testing.assert_array_equal(y[:, :, 0], [[-1, -3], [-7, -9]])


def test_same_padding_splits_an_even_total_evenly_and_puts_the_odd_one_after() -> None:
    """4x4 with a 3x3 window, stride 1: total 2, one row/column each side; with a 4x4 window: total 3, 1 before and
    2 after. Every output is the max of the real inputs its window covers."""
    x = _column([[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11], [12, 13, 14, 15]])
    three = Pool2D("max", (3, 3), (1, 1), "same").forward(x)[:, :, 0]
    np.testing.assert_array_equal(three, [[5, 6, 7, 7], [9, 10, 11, 11], [13, 14, 15, 15], [13, 14, 15, 15]])
    four = Pool2D("avg", (4, 4), (1, 1), "same").forward(x)[:, :, 0]
    # output (0, 0) covers rows -1..2 and columns -1..2: the real inputs rows 0-2, columns 0-2
    assert four[0, 0] == pytest.approx(np.mean([0, 1, 2, 4, 5, 6, 8, 9, 10]))
    assert four[3, 3] == pytest.approx(np.mean([10, 11, 14, 15]))  # rows 2..5, columns 2..5
    assert four[1, 2] == pytest.approx(np.mean(np.arange(16).reshape(4, 4)[0:4, 1:4]))


@pytest.mark.parametrize("mode", ["max", "avg"])
def test_same_padding_along_one_axis_only(mode: str) -> None:
    """A SAME pool that needs padding along one axis and not the other pads that axis, at the end."""
    x = _column([[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]])  # (3, 4): rows need one more, columns none
    op = Pool2D(mode, (2, 2), (2, 2), "same")
    expected = {"max": [[6, 8], [10, 12]], "avg": [[3.5, 5.5], [9.5, 11.5]]}[mode]
    np.testing.assert_allclose(op.forward(x)[:, :, 0], expected)
    np.testing.assert_allclose(op.forward(np.ascontiguousarray(x.transpose(1, 0, 2)))[:, :, 0],
                               np.transpose(expected))


def test_same_average_pool_divides_by_the_real_inputs_only() -> None:
    """4x4 -> 2x2 with a 3x3 window, stride 2: padding 0 before, 1 after; edge windows average 6 or 4 real values."""
    x = _column([[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11], [12, 13, 14, 15]])
    y = Pool2D("avg", (3, 3), (2, 2), "same").forward(x)
    expected = [[np.mean([0, 1, 2, 4, 5, 6, 8, 9, 10]), np.mean([2, 3, 6, 7, 10, 11])],
                [np.mean([8, 9, 10, 12, 13, 14]), np.mean([10, 11, 14, 15])]]
    np.testing.assert_allclose(y[:, :, 0], expected, rtol=1e-6)


def test_valid_pools_with_unequal_windows_and_strides() -> None:
    x = _column([[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 11, 12, 13, 14]])
    # 2 rows x 3 columns, strides (1, 2): rows {0,1},{1,2}; columns {0,1,2},{2,3,4}; the incomplete 5th column dropped
    np.testing.assert_array_equal(Pool2D("max", (2, 3), (1, 2), "valid").forward(x)[:, :, 0], [[7, 9], [12, 14]])
    np.testing.assert_allclose(Pool2D("avg", (2, 3), (1, 2), "valid").forward(x)[:, :, 0],
                               [[np.mean([0, 1, 2, 5, 6, 7]), np.mean([2, 3, 4, 7, 8, 9])],
                                [np.mean([5, 6, 7, 10, 11, 12]), np.mean([7, 8, 9, 12, 13, 14])]], rtol=1e-6)


def test_pools_keep_channels_apart() -> None:
    x = np.stack([np.arange(16).reshape(4, 4), -np.arange(16).reshape(4, 4)], axis=-1).astype(np.float32)
    y = Pool2D("max", (2, 2), (2, 2), "valid").forward(x)
    np.testing.assert_array_equal(y[:, :, 0], [[5, 7], [13, 15]])
    np.testing.assert_array_equal(y[:, :, 1], [[0, -2], [-8, -10]])


def test_reductions_flatten_in_keras_order_and_pool_globally() -> None:
    x = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4) * np.float32(0.5) - 3
    flat = Reduce("flatten").forward(x)
    for i, j, c in np.ndindex(x.shape):  # Keras channels_last Flatten: index (i * w + j) * k + c
        assert flat[(i * 3 + j) * 4 + c] == x[i, j, c]
    for c in range(4):
        assert Reduce("max").forward(x)[c] == max(x[i, j, c] for i in range(2) for j in range(3))
        assert Reduce("avg").forward(x)[c] == pytest.approx(sum(float(x[i, j, c]) for i in range(2)
                                                                 for j in range(3)) / 6, rel=1e-6)


def test_affine_and_dense_are_their_formulas() -> None:
    x = np.array([[[1.0, -2.0]]], np.float32)
    affine = Affine(np.array([3.0, 0.5], np.float32), np.array([0.25, -1.0], np.float32))
    np.testing.assert_array_equal(affine.forward(x)[0, 0], [3.25, -2.0])
    dense = Dense(np.array([[1.0, 2.0, 0.0], [-1.0, 0.5, 4.0]], np.float32), np.array([0.0, 1.0, -1.0], np.float32))
    np.testing.assert_allclose(dense.forward(np.array([2.0, 3.0], np.float32)), [-1.0, 6.5, 11.0])


def test_every_op_takes_and_gives_float32() -> None:
    """The module's contract (edge/explain/head_ops.py): float32 in, float32 out, forward and backward."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(5, 4, 3)).astype(np.float32)
    ops = [Pool2D("max", (2, 2), (2, 2), "same"), Pool2D("avg", (3, 2), (2, 1), "same"), Reduce("avg"),
           Reduce("max"), Reduce("flatten"), Affine(np.ones(3, np.float32), np.zeros(3, np.float32)),
           *(Activation(name) for name in activations.ACTIVATIONS)]
    for op in ops:
        y = op.forward(x)
        g = rng.normal(size=y.shape).astype(np.float32)
        assert y.dtype == np.float32 and op.backward(x, y, g).dtype == np.float32, op


@pytest.mark.parametrize("name", activations.ACTIVATIONS)
def test_activation_ops_backward_equals_finite_differences_of_the_textbook_formula(name: str) -> None:
    z = np.array([[-7.0, -2.5, -0.4, 0.3, 1.1, 4.0, 5.7, 6.6]], np.float32)  # both sides of 0 and 6, no kink hit
    formula = {"linear": lambda v: v, "relu": lambda v: np.maximum(v, 0), "relu6": lambda v: np.clip(v, 0, 6),
               "sigmoid": _sigmoid64, "softmax": lambda v: np.stack([_softmax64(row) for row in v]),
               # PyTorch's definitions (torch.nn docs), in float64: kinks of hardswish/hardsigmoid at +-3 not hit
               "hardswish": lambda v: v * np.clip(v + 3, 0, 6) / 6, "hardsigmoid": lambda v: np.clip(v / 6 + 0.5, 0, 1),
               "silu": lambda v: v * _sigmoid64(v),
               "gelu": lambda v: 0.5 * v * (1 + np.vectorize(math.erf)(v / math.sqrt(2)))}[name]
    g = np.array([[0.3, -1.2, 0.8, 2.0, -0.5, 1.5, -0.7, 0.9]])
    numerical = np.zeros(z.shape)
    for idx in np.ndindex(z.shape):
        plus, minus = z.astype(np.float64), z.astype(np.float64)
        plus[idx] += 1e-4
        minus[idx] -= 1e-4
        numerical[idx] = ((formula(plus) - formula(minus)) * g).sum() / 2e-4
    op = Activation(name)
    np.testing.assert_allclose(op.backward(z, op.forward(z), g.astype(np.float32)), numerical, rtol=1e-3, atol=1e-6)


def _sigmoid64(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _softmax64(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max())
    return e / e.sum()


@pytest.mark.parametrize("name", ["sigmoid", "softmax", "relu", "relu6"])
def test_activations_are_their_textbook_formulas(name: str) -> None:
    z = np.array([-30.0, -6.5, -0.3, 0.0, 0.7, 5.9, 6.1, 30.0], np.float32)
    expected = {"sigmoid": _sigmoid64, "softmax": _softmax64, "relu": lambda v: np.maximum(v, 0),
                "relu6": lambda v: np.minimum(np.maximum(v, 0), 6)}[name](z.astype(np.float64))
    np.testing.assert_allclose(activations.forward(name, z), expected, rtol=1e-6, atol=1e-12)


def _head(output_activation: str) -> Head:
    """BatchNorm (scales far from 1) -> SAME max-pool with an odd padding total -> Flatten -> Dense relu -> Dense."""
    rng = np.random.default_rng(5)
    k, hidden, classes = 3, 6, 4
    ops = [Affine(np.array([2.5, 0.4, 1.7], np.float32), rng.normal(0, 0.3, k).astype(np.float32)),
           Pool2D("max", (2, 2), (2, 2), "same"),  # (5, 5) -> (3, 3)
           Reduce("flatten"),
           flatten_dense(rng.normal(0, 0.4, (9 * k, hidden)).astype(np.float32),
                          rng.normal(0, 0.1, hidden).astype(np.float32), 9),
           Activation("relu"),
           Dense(rng.normal(0, 0.6, (hidden, classes)).astype(np.float32), np.zeros(classes, np.float32))]
    return Head(ops, (5, 5, k), output_activation)


def _reference_score(head: Head, A: np.ndarray, c: int, score: str) -> float:
    """The same network written out in float64 NumPy without edge's ops (SAME pooling by hand: pad after)."""
    affine, _, _, dense1, _, dense2 = head.ops
    assert isinstance(affine, Affine) and isinstance(dense1, Dense) and isinstance(dense2, Dense)
    x = A.astype(np.float64) * affine.scale + affine.offset  # (5, 5, k)
    padded = np.pad(x, ((0, 1), (0, 1), (0, 0)), constant_values=-np.inf)  # (6, 6, k)
    pooled = padded.reshape(3, 2, 3, 2, -1).max(axis=(1, 3))  # (3, 3, k)
    z = np.maximum(pooled.reshape(-1) @ dense1.kernel + dense1.bias, 0) @ dense2.kernel + dense2.bias
    if score == "logit":
        return float(z[c])
    p = _sigmoid64(z) if head.output_activation == "sigmoid" else _softmax64(z)
    return float(p[c])


@pytest.mark.parametrize("score", ["logit", "probability"])
@pytest.mark.parametrize("output_activation", ["sigmoid", "softmax"])
def test_head_gradient_and_gradcam_weights_equal_finite_differences_of_the_reference(
        output_activation: str, score: str) -> None:
    head = _head(output_activation)
    # distinct values 0.05 apart: a step of 1e-3 never changes a window's maximum or a ReLU's side
    A = np.random.default_rng(6).permutation(75).reshape(5, 5, 3).astype(np.float32) * np.float32(0.05) - 1.5
    hp = head.forward(A)
    for c in range(head.num_classes):
        assert float(hp.logits[c]) == pytest.approx(_reference_score(head, A, c, "logit"), rel=1e-5, abs=1e-6)
        numerical = np.zeros(A.shape)
        for idx in np.ndindex(A.shape):
            plus, minus = A.astype(np.float64), A.astype(np.float64)
            plus[idx] += 1e-3
            minus[idx] -= 1e-3
            numerical[idx] = (_reference_score(head, plus, c, score) - _reference_score(head, minus, c, score)) / 2e-3
        dz = head.score_gradient(hp, c, score)
        scale = np.abs(numerical).max()
        assert scale > 0
        np.testing.assert_allclose(head.gradient(hp, dz), numerical, rtol=0, atol=1e-3 * scale)
        assert head.fast_channel_weights  # the cheap path, which must carry the BatchNorm scale through the pool
        np.testing.assert_allclose(head.weights(hp, c, dz), numerical.mean(axis=(0, 1)), rtol=0,
                                   atol=1e-3 * scale)


def _gap_relu6_head() -> Head:
    """Global average pooling -> Dense -> ReLU6 -> Dense: no Flatten spatial sums and no constant CAM weights, so the
    Grad-CAM weights take the general backward path through the vector layers."""
    rng = np.random.default_rng(8)
    return Head([Reduce("avg"), Dense(rng.normal(0, 3.0, (4, 5)).astype(np.float32), np.full(5, 2.0, np.float32)),
                 Activation("relu6"), Dense(rng.normal(0, 1.0, (5, 3)).astype(np.float32), np.zeros(3, np.float32))],
                (3, 3, 4), "softmax")


def test_gradcam_weights_through_relu6_after_global_average_pooling() -> None:
    head = _gap_relu6_head()
    A = np.random.default_rng(9).normal(0, 1.0, (3, 3, 4)).astype(np.float32)
    hp = head.forward(A)
    _, d1, _, d2 = head.ops
    assert isinstance(d1, Dense) and isinstance(d2, Dense)
    hidden = A.astype(np.float64).mean(axis=(0, 1)) @ d1.kernel + d1.bias
    assert ((hidden > 0) & (hidden < 6)).any() and ((hidden <= 0) | (hidden >= 6)).any()  # both sides of the clip
    on = ((hidden > 0) & (hidden < 6)).astype(np.float64)
    for c in range(3):
        expected = d1.kernel @ (on * d2.kernel[:, c]) / 9  # d logit_c / d A, the same at every position, / (h * w)
        dz = head.score_gradient(hp, c, "logit")
        np.testing.assert_allclose(head.weights(hp, c, dz), expected, rtol=1e-5, atol=1e-7)


def test_gradcam_weights_with_a_relu_before_the_reduction_take_the_full_gradient() -> None:
    """ReLU -> 2x2 average pool -> Flatten -> Dense: the ReLU's mask breaks the shortcut through spatial sums, so the
    weights must be the spatial mean of the true gradient: relu'(A) times the Dense row of each cell's pool window,
    divided by 4 (the pool) and by h * w (the mean)."""
    rng = np.random.default_rng(10)
    kernel = rng.normal(size=(2 * 2 * 3, 2)).astype(np.float32)  # the pooled map is (2, 2, 3)
    head = Head([Activation("relu"), Pool2D("avg", (2, 2), (2, 2), "valid"), Reduce("flatten"),
                 flatten_dense(kernel, np.zeros(2, np.float32), 4)], (4, 4, 3), "softmax")
    assert not head.fast_channel_weights and head.cam_weights is None
    A = rng.normal(size=(4, 4, 3)).astype(np.float32)
    hp = head.forward(A)
    rows = kernel.reshape(2, 2, 3, 2)  # Keras Flatten order: (i, j, channel)
    for c in range(2):
        upsampled = np.repeat(np.repeat(rows[:, :, :, c], 2, axis=0), 2, axis=1) / 4  # (4, 4, 3) d logit / d pooled
        expected = ((A > 0) * upsampled).mean(axis=(0, 1))
        weights = head.weights(hp, c, head.score_gradient(hp, c, "logit"))
        assert weights.shape == (3,) and weights.dtype == np.float32
        np.testing.assert_allclose(weights, expected, rtol=1e-5, atol=1e-7)


def test_fast_gradcam_weights_equal_the_full_gradients_mean_with_the_batchnorm_last_before_the_reduction() -> None:
    """Pool -> BatchNorm -> Flatten -> Dense relu -> Dense: the BatchNorm scale nearest the reduction is applied too."""
    rng = np.random.default_rng(11)
    head = Head([Pool2D("max", (2, 2), (2, 2), "valid"), Affine(np.array([3.0, 0.2], np.float32),
                                                                 np.array([0.1, -0.4], np.float32)),
                 Reduce("flatten"),
                 flatten_dense(rng.normal(size=(8, 5)).astype(np.float32), np.zeros(5, np.float32), 4),
                 Activation("relu"), Dense(rng.normal(size=(5, 3)).astype(np.float32), np.zeros(3, np.float32))],
                (4, 4, 2), "softmax")
    assert head.fast_channel_weights and head.cam_weights is None
    A = rng.normal(size=(4, 4, 2)).astype(np.float32)
    hp = head.forward(A)
    for c in range(3):
        dz = head.score_gradient(hp, c, "probability")
        assert dz.dtype == np.float32
        np.testing.assert_allclose(head.weights(hp, c, dz), head.gradient(hp, dz).mean(axis=(0, 1)), rtol=1e-5,
                                   atol=1e-7)


@pytest.mark.parametrize("reduction", ["avg", "max", "flatten"])
def test_gradcam_weights_without_a_dense_after_the_reduction_keep_the_batchnorm_scale(reduction: str) -> None:
    """BatchNorm -> 2x2 max pool -> reduction -> ReLU -> Dense (a Flatten here has no Dense to carry spatial sums):
    the weights come from the gradient at the reduction, summed over space and scaled by the BatchNorm; they must
    equal the full gradient's spatial mean for both scores."""
    rng = np.random.default_rng(12)
    n = 2 * 2 * 3 if reduction == "flatten" else 3
    head = Head([Affine(np.array([2.5, -0.5, 0.3], np.float32), np.array([0.1, 0.2, -0.3], np.float32)),
                 Pool2D("max", (2, 2), (2, 2), "valid"), Reduce(reduction), Activation("relu"),
                 Dense(rng.normal(size=(n, 4)).astype(np.float32), np.zeros(4, np.float32))], (4, 4, 3), "softmax")
    assert head.fast_channel_weights and head.cam_weights is None
    hp = head.forward(rng.normal(size=(4, 4, 3)).astype(np.float32))
    for c in range(4):
        for score in ("logit", "probability"):
            dz = head.score_gradient(hp, c, score)
            expected = head.gradient(hp, dz).astype(np.float64).mean(axis=(0, 1))
            assert np.abs(expected).max() > 0
            weights = head.weights(hp, c, None if score == "logit" else dz)
            assert weights.shape == (3,) and weights.dtype == np.float32
            np.testing.assert_allclose(weights, expected, rtol=1e-5, atol=1e-7)

