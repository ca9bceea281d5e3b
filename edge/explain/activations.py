"""Element-wise activations of the NumPy head, forward and backward, float32 in and out.

The Keras ones match TensorFlow's gradients; hardswish, hardsigmoid, silu and gelu (PyTorch heads: MobileNetV3,
EfficientNet, ConvNeXt/ViT-style MLPs) match torch's own forward formulas and backward kernels, boundaries included.
GELU is torch's default, exact form x * Phi(x) with the normal CDF from erf; NumPy has no erf and the device has no
SciPy, so erf is math.erf element-wise (double precision; the head's vectors are ~1000 wide, so a Python-level loop
costs well under a millisecond).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

F32 = NDArray[np.float32]

ACTIVATIONS = ("linear", "relu", "relu6", "sigmoid", "softmax", "hardswish", "hardsigmoid", "silu", "gelu")

_erf = np.frompyfunc(math.erf, 1, 1)
_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _sigmoid(x: F32) -> F32:
    # Written with exp(-|x|) so that large |x| neither overflows nor loses the small side.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(np.float32)


def _normal_cdf(x: F32) -> NDArray[np.float64]:
    """Phi(x) = (1 + erf(x / sqrt 2)) / 2 in float64, same shape as x."""
    erf = _erf(x.astype(np.float64) * _INV_SQRT2).astype(np.float64)
    return np.asarray(0.5 * (1.0 + erf), np.float64)


def forward(name: str, x: F32) -> F32:
    if name == "linear":
        return x
    if name == "relu":
        return np.maximum(x, 0.0)
    if name == "relu6":
        return np.clip(x, 0.0, 6.0)
    if name == "sigmoid":
        return _sigmoid(x)
    if name == "softmax":
        z = np.exp(x - x.max(axis=-1, keepdims=True))
        return (z / z.sum(axis=-1, keepdims=True)).astype(np.float32)
    if name == "hardswish":  # x * relu6(x + 3) / 6
        return (x * np.clip(x + 3.0, 0.0, 6.0) / 6.0).astype(np.float32)
    if name == "hardsigmoid":  # relu6(x + 3) / 6
        return (np.clip(x + 3.0, 0.0, 6.0) / 6.0).astype(np.float32)
    if name == "silu":  # x * sigmoid(x)
        return (x * _sigmoid(x)).astype(np.float32)
    if name == "gelu":  # x * Phi(x), the exact (erf) form: torch's approximate='none'
        return (x.astype(np.float64) * _normal_cdf(x)).astype(np.float32)
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
    if name == "hardswish":  # torch's hardswish_backward: 0 up to -3, x / 3 + 1/2 strictly inside, 1 from 3 on
        slope = np.where(x <= -3.0, 0.0, np.where(x < 3.0, x / 3.0 + 0.5, 1.0))
        return (g * slope).astype(np.float32)
    if name == "hardsigmoid":  # torch's hardsigmoid_backward: 1/6 strictly inside (-3, 3), else 0
        return (g * np.where((x > -3.0) & (x < 3.0), 1.0 / 6.0, 0.0)).astype(np.float32)
    if name == "silu":  # s (1 + x (1 - s)), s = sigmoid(x)
        s = _sigmoid(x)
        return (g * s * (1.0 + x * (1.0 - s))).astype(np.float32)
    if name == "gelu":  # Phi(x) + x phi(x)
        x64 = x.astype(np.float64)
        slope = _normal_cdf(x) + x64 * _INV_SQRT_2PI * np.exp(-0.5 * x64 * x64)
        return (g * slope).astype(np.float32)
    raise ValueError(f"unknown activation {name!r}")
