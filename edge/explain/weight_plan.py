"""Grad-CAM's channel weights, planned once per head when it loads: WeightPlan.weights(hp, c, dz) is the one way to
them, for the default explain call and the Grad-CAM method alike.

alpha = the spatial mean of dScore/dA, (k,). Where every op before the reduction keeps the gradient's spatial sum up
to a per-channel factor (pooling routes it, an affine scales it), alpha = factor * (the gradient's spatial sum at the
reduction), and no (h, w, k) gradient is formed; where a Dense follows the reduction, that sum is one (k x n1)
product with its kernel (global pooling) or its kernel's spatial sums (Flatten). With an activation before the
reduction the full gradient is formed and averaged. For a class's logit the last Dense's gradient is a row of its
kernel, and the per-frame form is chosen here for the head at hand (docs/performance.md says what each costs).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from edge.explain.head_ops import F32, Activation, Affine, Dense, HeadPass, Op, Pool2D, Reduce

# The largest (C x k x n1) the plan copies per class (float32 elements: 16 MB).
_PER_CLASS_MAX = 4 * 1024 * 1024
_sign = np.sign
# (head pass, class index, dScore/dLogits or None for the class's logit) -> (k,) float32 Grad-CAM weights
Weights = Callable[..., F32]


def backward(ops: list[Op], hp: HeadPass, g: F32, down_to: int = 0) -> F32:
    """The gradient at the input of ops[down_to], from g at the head's output, through the ops of one forward pass."""
    for i in range(len(ops) - 1, down_to - 1, -1):
        g = ops[i].backward(hp.inputs[i], hp.outputs[i], g)
    return g


class WeightPlan:
    """The per-frame Grad-CAM weights of one head (see the module's docstring); weights is chosen in __init__."""

    def __init__(self, ops: list[Op], reduce_at: int, input_shape: tuple[int, int, int],
                 one_hot: tuple[F32, ...]) -> None:
        h, w, k = input_shape
        self._ops, self._reduce_at, self._k, self._one_hot = ops, reduce_at, k, one_hot
        self._input_shape = input_shape
        self.fast = all(isinstance(op, Pool2D | Affine) for op in ops[:reduce_at])
        reduce = ops[reduce_at]
        assert isinstance(reduce, Reduce)
        self._flatten = reduce.mode == "flatten"
        scale = np.ones(k, np.float64)
        for op in ops[:reduce_at]:
            if isinstance(op, Affine):
                scale *= op.scale
        self._factor = scale / (h * w)  # (k,) float64: the spatial mean of dScore/dA per unit of the pooled gradient
        first = ops[reduce_at + 1] if reduce_at + 1 < len(ops) else None
        summed = None
        if self.fast and isinstance(first, Dense):
            summed = first.spatial_sum if self._flatten else first.kernel  # (k, n1) float32, or None
        # The product ends the backward pass at the first Dense's output; without one, at the reduction's output.
        self._down_to = reduce_at + (2 if summed is not None else 1)
        self._matrix_3d: F32 = np.zeros((k, 1, 0), np.float32)  # set by _plan_product where a Dense follows
        self._has_matrix = summed is not None
        self._after: F32 | None = None
        self.relu_at: int | None = None
        self.per_class: tuple[F32, ...] | None = None
        self.rows: tuple[F32, ...] = ()
        if summed is not None:
            self._plan_product(summed, reduce_at)
        self.weights: Weights = self._choose()

    def _plan_product(self, summed: F32, reduce_at: int) -> None:
        """The (k, n1) product's matrix and, for a head ending in a Dense, each class logit's row and ReLU forms."""
        ops, k = self._ops, self._k
        to_channels = summed * self._factor[:, None]  # (k, n1) float64
        # Flatten: the spatial sums times the factor, a constant. Global pooling: the first Dense's own kernel, which
        # the forward pass has just read (a scaled copy would be out of cache), and the factor after the product.
        matrix = np.ascontiguousarray(to_channels, np.float32) if self._flatten else summed
        self._after = None if self._flatten else self._factor.astype(np.float32)
        self._matrix_3d = matrix.reshape(k, 1, -1)  # (k, 1, n1) view: ndarray.dot runs one BLAS dot per channel
        last = ops[-1]
        if not isinstance(last, Dense):
            return
        single = len(ops) == reduce_at + 2  # the reduction's Dense is the last op: linear in A
        # (C, n): for class c's logit, the gradient at the last Dense's input (one Dense: the channel weights)
        logit_rows = np.ascontiguousarray((to_channels if single else last.kernel).T, np.float32)
        logit_rows.flags.writeable = False
        self.rows = tuple(logit_rows)  # read-only views: a class's row is a tuple index, not a NumPy call
        middle = list(range(len(ops) - 2, reduce_at + 1, -1))
        only = ops[middle[0]] if len(middle) == 1 else None
        if isinstance(only, Activation) and only.name == "relu":  # Dense -> ReLU -> Dense: the mask is np.sign(y)
            self.relu_at = middle[0]
            if self._flatten and logit_rows.size * k <= _PER_CLASS_MAX:  # each class's matrix times row, at load
                per_class = to_channels[None] * logit_rows[:, None, :]  # (C, k, n1) float64
                stacked = np.ascontiguousarray(per_class, np.float32).reshape(len(self.rows), k, 1, -1)
                stacked.flags.writeable = False
                self.per_class = tuple(stacked)

    def _choose(self) -> Weights:
        """weights(hp, class_index, dz=None): the class's logit's weights when dz is None, else the score's."""
        general, rows, k = self._general, self.rows, self._k
        if not rows:
            one_hot = self._one_hot
            return lambda hp, class_index, dz=None: general(hp, one_hot[class_index] if dz is None else dz)
        if len(self._ops) == self._reduce_at + 2:
            return lambda hp, class_index, dz=None: rows[class_index] if dz is None else general(hp, dz)
        relu_at, per_class = self.relu_at, self.per_class
        if relu_at is not None and per_class is not None:
            def relu_per_class(hp: HeadPass, class_index: int, dz: F32 | None = None, sign: np.ufunc = _sign) -> F32:
                if dz is not None:
                    return general(hp, dz)
                return per_class[class_index].dot(sign(hp.outputs[relu_at])).reshape(k)  # (k, 1, n1) . (n1,)

            return relu_per_class
        product, last = self._product, len(self._ops) - 1
        if relu_at is not None:
            return lambda hp, class_index, dz=None: (product(rows[class_index] * _sign(hp.outputs[relu_at]))
                                                     if dz is None else general(hp, dz))
        return lambda hp, class_index, dz=None: (self._from(hp, rows[class_index], last - 1) if dz is None
                                                 else general(hp, dz))

    def _general(self, hp: HeadPass, dz: F32) -> F32:
        """(k,) for any dScore/dLogits dz."""
        if not self.fast:
            return backward(self._ops, hp, dz).mean(axis=(0, 1), dtype=np.float32)
        return self._from(hp, dz, len(self._ops) - 1)

    def _from(self, hp: HeadPass, g: F32, start: int) -> F32:
        """(k,) from g, the gradient at the output of ops[start] (a fast head's)."""
        ops = self._ops
        for i in range(start, self._down_to - 1, -1):
            g = ops[i].backward(hp.inputs[i], hp.outputs[i], g)
        if self._has_matrix:
            return self._product(g)
        if self._flatten:  # the reduction's input gradient, summed over space
            g = g.reshape(hp.inputs[self._reduce_at].shape).sum(axis=(0, 1))
        return (g * self._factor).astype(np.float32)

    def _product(self, g: F32) -> F32:
        """factor * (matrix @ g), (k,), through the (k, 1, n1) view: never NumPy's threaded matrix-vector product."""
        weights = self._matrix_3d.dot(g).reshape(self._k)
        if self._after is not None:
            weights *= self._after
        return weights

    def constant(self, forward: Callable[[F32], HeadPass], num_classes: int) -> F32 | None:
        """(k, C): every class's logit weights, for a head whose gradient does not depend on the frame (no activation
        anywhere: GAP -> Dense, with or without BatchNorm); None for the others."""
        if not self.fast or any(isinstance(op, Activation) for op in self._ops):
            return None
        hp = forward(np.zeros(self._input_shape, np.float32))
        return np.stack([self._general(hp, self._one_hot[c]) for c in range(num_classes)], axis=1)
