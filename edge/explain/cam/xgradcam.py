"""XGrad-CAM (Fu et al., "Axiom-based Grad-CAM: Towards Accurate Visualization and Explanation of CNNs",
arXiv 2008.02312, eq. 13): channel weights are the gradient averaged with the channel's own activations as weights,
w_k = sum_ij (A_ij^k / sum_ab A_ab^k) dS/dA_ij^k (a channel that is zero everywhere gets weight 0).
"""

from __future__ import annotations

import numpy as np

from edge.explain.cam.base import CamContext
from edge.explain.head_ops import F32


class XGradCAM:
    name = "xgradcam"

    def channel_weights(self, ctx: CamContext) -> F32:
        A = ctx.A
        total = A.sum(axis=(0, 1))  # (k,)
        weights = (A * ctx.gradient()).sum(axis=(0, 1)) / np.where(total != 0.0, total, 1.0)
        return weights.astype(np.float32)

    def weighted(self, ctx: CamContext) -> F32:
        return ctx.A * self.channel_weights(ctx)

    def raw(self, ctx: CamContext) -> F32:
        return ctx.A @ self.channel_weights(ctx)
