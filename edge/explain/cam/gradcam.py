"""Grad-CAM (Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via Gradient-based Localization",
arXiv 1610.02391, eq. 1-2): channel weights are the spatial mean of dScore/dA; the map is their weighted sum of A.
"""

from __future__ import annotations

from edge.explain.cam.base import CamContext
from edge.explain.head_ops import F32


class GradCAM:
    name = "gradcam"

    def weighted(self, ctx: CamContext) -> F32:
        """(h, w, k): the per-channel terms the map sums (eigen_smooth projects these instead)."""
        return ctx.A * ctx.channel_weights()

    def raw(self, ctx: CamContext) -> F32:
        # ndarray.dot of the 3-D A: one BLAS dot per position, never NumPy's threaded product (docs/performance.md)
        return ctx.A.dot(ctx.channel_weights())  # (h, w, k), (k,) -> (h, w)
