"""Grad-CAM++ (Chattopadhyay et al., "Grad-CAM++: Improved Visual Explanations for Deep Convolutional Networks",
arXiv 1710.11063, eq. 19), with first-order gradients only.

With the class score passed through exp (Y = exp(S)), the paper's second and third derivatives become powers of the
first: alpha_ij^k = g^2 / (2 g^2 + sum_ab A_ab^k g^3), g = dS/dA_ij^k. exp(S) cancels in alpha and only scales the map,
so it is left out. As in the authors' code and tf-keras-vis's GradcamPlusPlus, the alphas are normalised to sum to 1
over space per channel (pytorch-grad-cam does not normalise them). Channel weights w_k = sum_ij alpha_ij^k relu(g_ij^k).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from edge.explain.cam.base import CamContext
from edge.explain.head_ops import F32


class GradCAMPlusPlus:
    name = "gradcampp"

    def channel_weights(self, ctx: CamContext) -> NDArray[np.float64]:
        # float64: where A can be negative (a BatchNorm target), 2 + sum(A) g can come near 0 and float32 alphas
        # lose digits; the map is small (h, w, k), so the cost is negligible.
        g = ctx.gradient().astype(np.float64)  # (h, w, k)
        A = ctx.A.astype(np.float64)
        g2 = g * g
        denominator = 2.0 * g2 + A.sum(axis=(0, 1)) * g2 * g
        alpha = g2 / np.where(denominator != 0.0, denominator, 1.0)
        total = alpha.sum(axis=(0, 1))  # (k,)
        alpha = alpha / np.where(total != 0.0, total, 1.0)
        return (alpha * np.maximum(g, 0.0)).sum(axis=(0, 1))  # (k,) float64

    def weighted(self, ctx: CamContext) -> F32:
        return (ctx.A.astype(np.float64) * self.channel_weights(ctx)).astype(np.float32)

    def raw(self, ctx: CamContext) -> F32:
        return (ctx.A.astype(np.float64) @ self.channel_weights(ctx)).astype(np.float32)
