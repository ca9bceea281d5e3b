"""The head's Hessian-vector product H v = d/de [dScore/dA](A + e v) at e = 0, exactly, by forward-mode
differentiation of the backward pass (Pearlmutter, "Fast exact multiplication by the Hessian", Neural Computation 6,
1994): the directional derivative r of every op's input is carried forward, then the gradient's directional
derivative backward. Linear ops (Dense, Affine, average pooling, Flatten) pass it through their own backward; an
element-wise activation adds f''(x) r g; ReLU-like and max ops are piecewise linear (f'' = 0, as torch's double
backward has it).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from edge.errors import MethodError
from edge.explain.head import Head
from edge.explain.head_ops import F32, Activation, Affine, Dense, HeadPass, Op, Pool2D, Reduce

F64 = NDArray[Any]  # float64 arrays (Any: the ops are typed float32 but compute in the dtype they are given)
_PIECEWISE_LINEAR = ("linear", "relu", "relu6", "hardsigmoid")


def second_derivative(name: str, x: F32) -> F64:
    """f''(x) of an element-wise activation, float64 (torch's double-backward formulas)."""
    x64 = x.astype(np.float64)
    if name in _PIECEWISE_LINEAR:
        return np.zeros_like(x64)
    if name == "hardswish":  # (x^2 + 3x) / 6 strictly inside (-3, 3)
        return np.where((x64 > -3.0) & (x64 < 3.0), 1.0 / 3.0, 0.0)
    s = 1.0 / (1.0 + np.exp(-x64))
    if name == "sigmoid":
        return s * (1.0 - s) * (1.0 - 2.0 * s)
    if name == "silu":
        return s * (1.0 - s) * (2.0 + x64 * (1.0 - 2.0 * s))
    if name == "gelu":  # phi(x) (2 - x^2)
        return np.exp(-0.5 * x64 * x64) / np.sqrt(2.0 * np.pi) * (2.0 - x64 * x64)
    raise MethodError(f"the head's {name!r} activation has no second derivative here: use a first-order method")


def _at_first_max(x: NDArray[np.float32], r: F64) -> F64:
    """(..., m) x and r -> (...): r where x has its first maximum along the last axis (a max's derivative along r)."""
    first = x.argmax(axis=-1)[..., None]
    return np.take_along_axis(r, first, axis=-1)[..., 0]


def _pool_jvp(op: Pool2D, x: F32, r: F64) -> F64:
    if op.mode == "max":
        windows_x, _ = op._windows(x, -np.inf)  # (ho, wo, k, ph, pw)
        windows_r, _ = op._windows(r, 0.0)
        return _at_first_max(windows_x.reshape(*windows_x.shape[:3], -1), windows_r.reshape(*windows_r.shape[:3], -1))
    windows_r, _ = op._windows(r, 0.0)
    return windows_r.sum(axis=(3, 4)) / op._counts(x)


def jvp(op: Op, x: F32, r: F64) -> F64:
    """The op's directional derivative at x along r (r shaped like x)."""
    if isinstance(op, Dense):
        return r @ op.kernel.astype(np.float64)
    if isinstance(op, Affine):
        return r * op.scale
    if isinstance(op, Activation):
        if op.name == "softmax":
            raise MethodError("a softmax inside the head has no second derivative here: use a first-order method")
        return np.asarray(op.backward(x, op.forward(x), np.ones_like(x)), np.float64) * r  # diagonal Jacobian
    if isinstance(op, Reduce):
        if op.mode == "flatten":
            return r.reshape(-1)
        if op.mode == "avg":
            return r.mean(axis=(0, 1))
        k = x.shape[-1]
        return _at_first_max(x.reshape(-1, k).T, r.reshape(-1, k).T)
    return _pool_jvp(op, x, r)


def score_hvp(head: Head, hp: HeadPass, class_index: int, score: str, r_logits: F64) -> F64:
    """d/de of dScore/dLogits along the logits' directional derivative r_logits, (C,)."""
    if score == "logit":
        return np.zeros_like(r_logits)
    p = hp.probabilities.astype(np.float64)
    pc = p[class_index]
    if head.output_activation == "sigmoid":
        out = np.zeros_like(r_logits)
        out[class_index] = pc * (1.0 - pc) * (1.0 - 2.0 * pc) * r_logits[class_index]
        return out
    r_p = p * (r_logits - p @ r_logits)  # softmax's directional derivative
    one_hot = np.zeros_like(p)
    one_hot[class_index] = 1.0
    return r_p[class_index] * (one_hot - p) - pc * r_p


def hessian_vector_product(head: Head, hp: HeadPass, class_index: int, score: str, dz: F32, v: F32) -> F64:
    """H v (h, w, k) float64: the Hessian of the score w.r.t. A (the head's input) times v (h, w, k)."""
    r: list[F64] = [v.astype(np.float64)]
    for op, x in zip(head.ops, hp.inputs, strict=True):
        r.append(jvp(op, x, r[-1]))
    g: F64 = dz.astype(np.float64)
    rg: F64 = score_hvp(head, hp, class_index, score, r[-1])
    for i in range(len(head.ops) - 1, -1, -1):
        op, x, y = head.ops[i], hp.inputs[i], hp.outputs[i]
        if isinstance(op, Activation) and op.name not in _PIECEWISE_LINEAR:
            extra = second_derivative(op.name, x) * r[i] * g
        else:
            extra = None
        rg = np.asarray(op.backward(x, y, rg), np.float64)
        if extra is not None:
            rg = rg + extra
        g = np.asarray(op.backward(x, y, g), np.float64)
    return rg
