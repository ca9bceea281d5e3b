"""What the trunk-pass methods share: perturbed copies of the model input run through the feature model and the head
(Score-CAM and its kin, Smooth Grad-CAM++, aug_smooth), and torch's bilinear resize of the activations to the input.

Each copy costs one feature-model pass, the methods' whole cost: the explainer hands them its batched trunk runner
(edge/explain/trunk_passes.py, a second interpreter).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from numpy.typing import NDArray

from edge.errors import MethodError
from edge.explain.cam.ablationcam import batched_scores
from edge.explain.cam.base import CamContext
from edge.explain.head_ops import F32

CHUNK = 16  # perturbed inputs made and scored at a time: (16, H, W, 3) float32, a few MB at 224


def trunk(ctx: CamContext) -> tuple[F32, Callable[[F32], F32]]:
    """The model input x (H, W, c) and the batched feature model, or a MethodError when the caller gave neither."""
    if ctx.x is None or ctx.trunk is None:
        raise MethodError("this CAM method runs the feature model on perturbed inputs: call it through an Explainer")
    return ctx.x, ctx.trunk


def scores_of(ctx: CamContext, xs: F32) -> NDArray[np.float64]:
    """The explained class's score (n,) for n model inputs (n, H, W, c)."""
    _, features = trunk(ctx)
    return batched_scores(ctx.head, features(xs), ctx.class_index, ctx.score or "logit")


def chunks(n: int, size: int = CHUNK) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def _resize_matrix(size_in: int, size_out: int, align_corners: bool) -> NDArray[np.float64]:
    """(size_out, size_in) weights of torch's 1-D linear interpolation (F.interpolate / UpsamplingBilinear2d)."""
    out = np.arange(size_out, dtype=np.float64)
    if align_corners:
        src = out * ((size_in - 1) / (size_out - 1)) if size_out > 1 else np.zeros(size_out)
    else:
        src = np.maximum((out + 0.5) * (size_in / size_out) - 0.5, 0.0)
    low = np.minimum(np.floor(src).astype(np.int64), size_in - 1)
    high = np.minimum(low + 1, size_in - 1)
    frac = src - low
    matrix = np.zeros((size_out, size_in), np.float64)
    np.add.at(matrix, (np.arange(size_out), low), 1.0 - frac)
    np.add.at(matrix, (np.arange(size_out), high), frac)
    return matrix


def resize_bilinear(maps: NDArray[Any], size: tuple[int, ...], *, align_corners: bool) -> NDArray[np.float64]:
    """(h, w, k) -> (H, W, k) float64, torch's bilinear resize (align_corners as given). In float64: a constant
    channel stays exactly constant (in float32 its rounding errors would become a full-contrast mask after min-max)."""
    rows = _resize_matrix(maps.shape[0], size[0], align_corners)
    cols = _resize_matrix(maps.shape[1], size[1], align_corners)
    return np.einsum("Hh,hwk,Ww->HWk", rows, maps.astype(np.float64), cols, optimize=True)


def minmax_channels(maps: NDArray[Any], eps: float = 1e-8) -> F32:
    """Each channel of (h, w, k) scaled to [0, 1]: (m - min) / (max - min + eps), float32."""
    low = maps.min(axis=(0, 1))
    return ((maps - low) / (maps.max(axis=(0, 1)) - low + eps)).astype(np.float32)
