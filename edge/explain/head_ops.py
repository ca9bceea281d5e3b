"""The operations a NumPy head is made of, each with an exact forward and backward pass.

Shapes: spatial ops take and give (h, w, k) float32; reduce ops take (h, w, k) and give (n,); vector ops take and give
(n,) vectors. Backward passes follow TensorFlow's gradient kernels, tie-breaking included, so that the device's
gradient equals tf.GradientTape's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from edge.explain import activations

F32 = NDArray[np.float32]


@dataclass(slots=True)
class HeadPass:
    """One forward pass of a head, kept for the backward passes that follow it (one per explained class)."""

    inputs: list[F32]  # the input of every op; inputs[0] is A (h, w, k)
    outputs: list[F32]  # the output of every op
    logits: F32  # (C,) before the output activation
    probabilities: F32  # (C,)


def _same_padding(size: int, pool: int, stride: int) -> tuple[int, int, int]:
    """TensorFlow's SAME padding: (output size, pad before, pad after)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + pool - size, 0)
    return out, total // 2, total - total // 2


@dataclass
class Pool2D:
    """MaxPooling2D / AveragePooling2D with TensorFlow's VALID or SAME padding."""

    mode: str  # "max" or "avg"
    pool: tuple[int, int]
    strides: tuple[int, int]
    padding: str  # "valid" or "same"
    kind: ClassVar[str] = "spatial"

    def _geometry(self, h: int, w: int) -> tuple[int, int, tuple[int, int], tuple[int, int]]:
        (ph, pw), (sh, sw) = self.pool, self.strides
        if self.padding == "same":
            ho, top, bottom = _same_padding(h, ph, sh)
            wo, left, right = _same_padding(w, pw, sw)
            return ho, wo, (top, bottom), (left, right)
        return (h - ph) // sh + 1, (w - pw) // sw + 1, (0, 0), (0, 0)

    def _windows(self, x: F32, fill: float) -> tuple[NDArray[Any], tuple[int, int]]:
        """All pooling windows as a view: (ho, wo, k, ph, pw), and the (top, left) padding."""
        h, w, _ = x.shape
        ho, wo, (top, bottom), (left, right) = self._geometry(h, w)
        if top or bottom or left or right:
            x = np.pad(x, ((top, bottom), (left, right), (0, 0)), constant_values=fill)
        (ph, pw), (sh, sw) = self.pool, self.strides
        view = np.lib.stride_tricks.sliding_window_view(x, (ph, pw), axis=(0, 1))  # type: ignore[call-overload]
        return view[: (ho - 1) * sh + 1 : sh, : (wo - 1) * sw + 1 : sw], (top, left)

    def forward(self, x: F32) -> F32:
        if self.mode == "max":
            windows, _ = self._windows(x, -np.inf)
            return windows.max(axis=(3, 4))
        windows, _ = self._windows(x, 0.0)
        return (windows.sum(axis=(3, 4)) / self._counts(x)).astype(np.float32)

    def _counts(self, x: F32) -> F32:
        """How many real (unpadded) inputs each window holds: SAME average pooling divides by that."""
        ones = np.ones((*x.shape[:2], 1), np.float32)
        windows, _ = self._windows(ones, 0.0)
        return windows.sum(axis=(3, 4))  # (ho, wo, 1)

    def backward(self, x: F32, y: F32, g: F32) -> F32:
        h, w, k = x.shape
        ho, wo = g.shape[:2]
        (ph, pw), (sh, sw) = self.pool, self.strides
        _, _, (top, bottom), (left, right) = self._geometry(h, w)
        gx = np.zeros((h + top + bottom, w + left + right, k), np.float32)
        rows = (np.arange(ho) * sh)[:, None, None]
        cols = (np.arange(wo) * sw)[None, :, None]
        chans = np.arange(k)[None, None, :]
        if self.mode == "max":
            windows, _ = self._windows(x, -np.inf)
            # TensorFlow's MaxPoolGrad sends each window's gradient to its first maximum in row-major order.
            first = windows.reshape(ho, wo, k, ph * pw).argmax(axis=-1)
            np.add.at(gx, (rows + first // pw, cols + first % pw, chans), g)
        else:
            share = g / self._counts(x)
            for di in range(ph):
                for dj in range(pw):
                    np.add.at(gx, (rows + di, cols + dj, chans), share)
        return gx[top : top + h, left : left + w]


@dataclass
class Affine:
    """Per-channel y = x * scale + offset along the last axis: an inference-mode BatchNormalization."""

    scale: F32
    offset: F32
    kind: str = "any"

    def forward(self, x: F32) -> F32:
        return x * self.scale + self.offset

    def backward(self, x: F32, y: F32, g: F32) -> F32:
        return g * self.scale


@dataclass
class Activation:
    """A stand-alone activation (Keras Activation / ReLU / Softmax layers) on any shape."""

    name: str
    kind: str = "any"

    def forward(self, x: F32) -> F32:
        return activations.forward(self.name, x)

    def backward(self, x: F32, y: F32, g: F32) -> F32:
        return activations.backward(self.name, x, y, g)


@dataclass
class Reduce:
    """Flatten or global pooling: (h, w, k) -> vector."""

    mode: str  # "flatten", "avg" or "max"
    kind: ClassVar[str] = "reduce"

    def forward(self, x: F32) -> F32:
        if self.mode == "flatten":
            return x.reshape(-1)  # Keras channels_last Flatten is row-major (h, w, k)
        if self.mode == "avg":
            return x.mean(axis=(0, 1), dtype=np.float32)
        return x.max(axis=(0, 1))

    def backward(self, x: F32, y: F32, g: F32) -> F32:
        h, w, _ = x.shape
        if self.mode == "flatten":
            return g.reshape(x.shape)
        if self.mode == "avg":
            return np.broadcast_to(g / (h * w), x.shape).astype(np.float32)
        # TensorFlow's gradient of reduce_max splits the gradient evenly between tied maxima.
        hits = (x == y).astype(np.float32)
        return hits * (g / hits.sum(axis=(0, 1)))


@dataclass
class Dense:
    """y = x @ kernel + bias; kernel (n_in, n_out). A Keras Dense's activation is a separate Activation op after it."""

    kernel: F32
    bias: F32
    # Optional, precomputed at export for a Dense right after Flatten: the kernel's rows summed over the spatial
    # positions, (k, n_out). It turns the Grad-CAM channel weights into one (k x n_out) product per frame.
    spatial_sum: F32 | None = field(default=None, repr=False)
    kind: ClassVar[str] = "vector"

    def forward(self, x: F32) -> F32:
        return x @ self.kernel + self.bias

    def backward(self, x: F32, y: F32, g: F32) -> F32:
        return self.kernel @ g


Op = Pool2D | Affine | Activation | Reduce | Dense
