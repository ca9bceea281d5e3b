"""Finer-CAM (Zhang et al., "Finer-CAM: Spotting the Difference Reveals Finer Details for Visual Explanation",
arXiv 2501.11309, eq. 4; pytorch-grad-cam's FinerCAM with its default base method GradCAM): Grad-CAM of a score that
compares the explained class with the classes the model finds most similar to it, so that the map shows what tells
them apart. The comparison classes are the (up to) 3 classes whose logits are nearest the explained class's logit;
with their softmax probabilities p_j as weights,

    S = sum_j p_j (z_c - alpha z_j) / (sum_j p_j + 1e-9),  alpha = 1,

and the gradient of S includes the probabilities' own gradient, as torch's autograd gives the reference. Finer-CAM
defines its own score: the configured score (logit or probability) does not apply.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from edge.explain.cam.base import CamContext
from edge.explain.head_ops import F32

COMPARISONS = 3  # pytorch-grad-cam's DEFAULT_COMPARISON_CATEGORIES = (1, 2, 3): ranks 1..3 by nearness


def comparison_classes(logits: F32, class_index: int, count: int = COMPARISONS) -> list[int]:
    """The classes ranked 1..count by |z - z_c| (rank 0 is the explained class itself), as the reference sorts them."""
    order = np.argsort(np.abs(logits - logits[class_index]))
    return [int(i) for i in order[1 : 1 + min(count, len(logits) - 1)]]


def finer_score_gradient(logits: F32, class_index: int, alpha: float = 1.0) -> NDArray[np.float64]:
    """dS/dz (C,) float64 of Finer-CAM's score S above."""
    z = logits.astype(np.float64)
    e = np.exp(z - z.max())
    p = e / e.sum()  # (C,)
    others = comparison_classes(logits, class_index)
    jacobian = np.diag(p) - np.outer(p, p)  # dp_j/dz_i = p_j (delta_ij - p_i), symmetric
    numerator = denominator = 0.0
    d_numerator = np.zeros_like(z)
    d_denominator = np.zeros_like(z)
    for j in others:
        difference = z[class_index] - alpha * z[j]
        numerator += p[j] * difference
        denominator += p[j]
        d_difference = -alpha * np.eye(len(z))[j]
        d_difference[class_index] += 1.0
        d_numerator += jacobian[j] * difference + p[j] * d_difference
        d_denominator += jacobian[j]
    denominator += 1e-9
    return (d_numerator * denominator - numerator * d_denominator) / (denominator * denominator)


class FinerCAM:
    name = "finercam"

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = alpha

    def channel_weights(self, ctx: CamContext) -> F32:
        dz = finer_score_gradient(ctx.head_pass.logits, ctx.class_index, self.alpha).astype(np.float32)
        return ctx.head.weights(ctx.head_pass, ctx.class_index, dz)

    def weighted(self, ctx: CamContext) -> F32:
        return ctx.A * self.channel_weights(ctx)

    def raw(self, ctx: CamContext) -> F32:
        return ctx.A.dot(self.channel_weights(ctx))
