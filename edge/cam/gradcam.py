"""Grad-CAM (Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via Gradient-based Localization",
arXiv 1610.02391, eq. 1-2): channel weights are the spatial mean of dScore/dA; the map is their weighted sum of A.
"""

from __future__ import annotations

import numpy as np

from edge.cam.base import CamContext
from edge.head_ops import F32


class GradCAM:
    name = "gradcam"

    def raw(self, ctx: CamContext) -> F32:
        # alpha_k = 1/Z sum_ij dS/dA_ijk, computed by the head without forming dS/dA (one small product).
        # einsum, not @: a matmul this small gains nothing from NumPy's BLAS thread pool, and waking that pool cost more
        # than the product itself while other threads were busy (measured: README, Performance).
        return np.einsum("ijk,k->ij", ctx.A, ctx.channel_weights())  # (h, w, k), (k,) -> (h, w)
