"""Grad-CAM element-wise (pytorch-grad-cam's GradCAMElementWise, after Selvaraju et al., arXiv 1610.02391, with the
gradient-activation product taken per position as in HiResCAM, Draelos & Carin, arXiv 2011.08891, eq. 4): the map is
sum_k relu(dS/dA^k * A^k). The ReLU is inside the channel sum, so negative evidence of one channel cannot cancel
positive evidence of another at the same position.
"""

from __future__ import annotations

import numpy as np

from edge.explain.cam.base import CamContext
from edge.explain.head_ops import F32


class GradCAMElementWise:
    name = "gradcamelementwise"

    def weighted(self, ctx: CamContext) -> F32:
        """(h, w, k): the per-channel terms the map sums (eigen_smooth projects these instead)."""
        return np.maximum(ctx.gradient() * ctx.A, 0.0)

    def raw(self, ctx: CamContext) -> F32:
        return self.weighted(ctx).sum(axis=-1)
