"""The pipeline every CAM method shares (after jacobgil/pytorch-grad-cam's base_cam.py, NumPy in and out).

activations A + the head's exact gradient -> a raw map (the method's own step) -> ReLU -> divide by the max.
A method implements only the raw map; how it gets the gradient (the cheap channel weights or the full dScore/dA) is
up to it, so Grad-CAM never pays for the element-wise path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from edge.explain.head import Head, HeadPass
from edge.explain.head_ops import F32

# A map whose positive maximum is below this is "nothing positive": all zeros, never a division by ~0.
_TINY = float(np.float32(1e-12))
_INF = float("inf")
_ZERO = np.float32(0.0)
_max = np.maximum.reduce
FLOAT32 = np.dtype(np.float32)


@dataclass(slots=True)
class CamContext:
    """What a method may ask for; the expensive parts are computed on demand, once."""

    A: F32  # (h, w, k) activations of the target layer
    head: Head
    head_pass: HeadPass
    dz: F32  # (C,) dScore/dLogits for the explained class and score
    class_index: int  # the explained class
    score: str | None = None  # "logit": dz is class_index's one-hot row, and the head can skip a product
    x: F32 | None = None  # (H, W, c) the model input, for the methods that run the trunk on perturbed copies
    trunk: Callable[[F32], F32] | None = None  # (n, H, W, c) model inputs -> (n, h, w, k) A, for those methods
    _gradient: F32 | None = field(default=None, repr=False)

    def channel_weights(self) -> F32:
        """(k,) spatial mean of dScore/dA: Grad-CAM's alpha."""
        if self.score == "logit":
            return self.head.logit_channel_weights(self.head_pass, self.class_index)
        return self.head.channel_weights(self.head_pass, self.dz)

    def gradient(self) -> F32:
        """(h, w, k) dScore/dA."""
        if self._gradient is None:
            self._gradient = self.head.gradient(self.head_pass, self.dz)
        return self._gradient


class CamMethod(Protocol):
    """One CAM method: turns a context into a raw map (h, w) float32, before ReLU and normalisation."""

    name: str

    def raw(self, ctx: CamContext) -> F32: ...


def normalise(cam_raw: F32) -> F32:
    """ReLU, then divide by the maximum: (h, w) float32 in [0, 1]; all zeros when nothing is positive or finite."""
    if cam_raw.dtype is not FLOAT32 or not cam_raw.size:  # `is`: see the end of _normalise_any
        return _normalise_any(cam_raw)
    # The float32 maps of every explain call, in the fewest and cheapest NumPy calls (issue 25: a 4x4 map's whole
    # normalisation was 3.9 us right after the feature model, most of it NumPy's handling of Python scalars; a warm
    # timeit 2.6 -> 1.3 us). argmax is a plain array method (no ufunc dispatch: 0.2 us against maximum.reduce's 0.9)
    # and, like maximum, stops at the first NaN, whose index then gives a NaN peak; .item() makes the peak a Python
    # float for the comparisons. The raw maximum decides (it is the ReLU'd map's maximum whenever that is positive).
    peak = cam_raw.item(cam_raw.argmax())
    if not _TINY < peak < _INF:  # NaN fails every comparison
        return np.zeros(cam_raw.shape, np.float32)
    # ufuncs take arrays of their own dtype and shape fastest: against a same-shape zeros array and a 0-d float32
    # divisor, 0.35 and 0.42 us, against the scalars 0 and peak 0.72 and 0.93 (value-based casting of the scalars).
    # The peak is a float32 value, so dividing by it in float32 is what dividing by the Python float did.
    cam = np.maximum(cam_raw, _zeros(cam_raw.shape))  # a new array: divided in place, no third one
    cam /= np.array(peak, FLOAT32)
    return cam


# Read-only zeros per map shape (an explainer's maps all have one shape): the ReLU's second operand. Bounded, for
# callers that normalise maps of many shapes (normalise is public): past the bound the cache starts again.
_ZEROS: dict[tuple[int, ...], F32] = {}
_ZEROS_KEPT = 16


def _zeros(shape: tuple[int, ...]) -> F32:
    zeros = _ZEROS.get(shape)
    if zeros is None:
        if len(_ZEROS) >= _ZEROS_KEPT:
            _ZEROS.clear()
        zeros = np.zeros(shape, np.float32)
        zeros.flags.writeable = False
        zeros = _ZEROS.setdefault(shape, zeros)
    return zeros


def _normalise_any(cam_raw: NDArray[Any]) -> F32:
    """normalise() for maps of other dtypes (a method's float64 map) and empty ones, as float32."""
    peak = float(_max(cam_raw, None)) if cam_raw.size else 0.0
    if not _TINY < peak < _INF:
        return np.zeros(cam_raw.shape, np.float32)
    cam = np.maximum(cam_raw, _ZERO)
    cam /= peak  # a Python float keeps the array's dtype
    # `is`, not ==: comparing a dtype with the type np.float32 converts the type first (about 1 us after the feature
    # model); a float32 array's dtype is NumPy's one float32 dtype object, and any other takes the (correct) astype.
    return cam if cam.dtype is FLOAT32 else cam.astype(np.float32)
