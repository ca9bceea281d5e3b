"""Element-wise activations of the NumPy head, forward and backward (matching TensorFlow's gradients)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

F32 = NDArray[np.float32]

ACTIVATIONS = ("linear", "relu", "relu6", "sigmoid", "softmax")


def forward(name: str, x: F32) -> F32:
    if name == "linear":
        return x
    if name == "relu":
        return np.maximum(x, 0.0)
    if name == "relu6":
        return np.clip(x, 0.0, 6.0)
    if name == "sigmoid":
        # Written with exp(-|x|) so that large |x| neither overflows nor loses the small side.
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(np.float32)
    if name == "softmax":
        z = np.exp(x - x.max(axis=-1, keepdims=True))
        return (z / z.sum(axis=-1, keepdims=True)).astype(np.float32)
    raise ValueError(f"unknown activation {name!r}")


def backward(name: str, x: F32, y: F32, g: F32) -> F32:
    """Vector-Jacobian product: the gradient w.r.t. x, given the gradient g w.r.t. y = forward(name, x)."""
    if name == "linear":
        return g
    if name == "relu":
        return g * (y > 0)  # TensorFlow's ReluGrad: zero at x == 0
    if name == "relu6":
        return g * ((x > 0) & (x < 6))
    if name == "sigmoid":
        return g * y * (1.0 - y)
    if name == "softmax":
        return y * (g - np.sum(g * y, axis=-1, keepdims=True))
    raise ValueError(f"unknown activation {name!r}")
