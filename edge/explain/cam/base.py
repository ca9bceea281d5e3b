"""The pipeline every CAM method shares (after jacobgil/pytorch-grad-cam's base_cam.py, NumPy in and out).

activations A + the head's exact gradient -> a raw map (the method's own step) -> ReLU -> divide by the max.
A method implements only the raw map; how it gets the gradient (the head's planned channel weights or the full
dScore/dA) is up to it, so Grad-CAM never pays for the element-wise path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from edge.explain.head import Head
from edge.explain.head_ops import F32, HeadPass

# A map whose positive maximum is below this is "nothing positive": all zeros, never a division by ~0.
_TINY = float(np.float32(1e-12))
_INF = float("inf")
# ufuncs take operands of the map's own dtype fastest: a 0-d float32 zero, not the Python scalar 0
_ZERO = np.array(0.0, np.float32)
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
        """(k,) spatial mean of dScore/dA: Grad-CAM's alpha, from the head's one weights()."""
        return self.head.weights(self.head_pass, self.class_index, None if self.score == "logit" else self.dz)

    def gradient(self) -> F32:
        """(h, w, k) dScore/dA."""
        if self._gradient is None:
            self._gradient = self.head.gradient(self.head_pass, self.dz)
        return self._gradient


class CamMethod(Protocol):
    """One CAM method: turns a context into a raw map (h, w) float32, before ReLU and normalisation. A method that runs
    the feature model on perturbed copies of ctx.x says so with a class attribute `needs_trunk = True` (see
    needs_trunk) and counts those passes in `trunk_passes(k)`."""

    name: str

    def raw(self, ctx: CamContext) -> F32: ...


def needs_trunk(method: CamMethod) -> bool:
    """Whether the method runs trunk passes (its `needs_trunk` flag, False where it has none): the one source of the
    registry's TRUNK_PASS_METHODS and of the imx500 source's refusal."""
    return bool(getattr(method, "needs_trunk", False))


def normalise(cam_raw: NDArray[Any]) -> F32:
    """ReLU, then divide by the maximum: (h, w) float32 in [0, 1]; all zeros when nothing is positive or finite.
    A map of another float dtype (a method's float64 map) is normalised in its own dtype, then made float32."""
    if not cam_raw.size:
        return np.zeros(cam_raw.shape, np.float32)
    # argmax, like maximum, stops at the first NaN, whose index then gives a NaN peak; the raw maximum decides (it is
    # the ReLU'd map's maximum whenever that is positive)
    peak = cam_raw.item(cam_raw.argmax())
    if not _TINY < peak < _INF:  # NaN fails every comparison
        return np.zeros(cam_raw.shape, np.float32)
    cam = np.maximum(cam_raw, _ZERO)  # a new array, in the map's dtype: divided in place, no third one
    cam /= np.array(peak, cam.dtype)  # the peak is a value of the map's dtype: dividing in that dtype is exact to it
    # `is`: comparing with the type np.float32 would convert the type on every call
    return cam if cam.dtype is FLOAT32 else cam.astype(np.float32)
