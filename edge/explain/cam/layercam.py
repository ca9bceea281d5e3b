"""LayerCAM (Jiang et al., "LayerCAM: Exploring Hierarchical Class Activation Maps for Localization", IEEE TIP 30,
2021, eq. 5-6): element-wise weights relu(dS/dA_ij^k) times A_ij^k, summed over channels.
"""

from __future__ import annotations

import numpy as np

from edge.explain.cam.base import CamContext
from edge.explain.head_ops import F32


class LayerCAM:
    name = "layercam"

    def weighted(self, ctx: CamContext) -> F32:
        """(h, w, k): the per-channel terms the map sums (eigen_smooth projects these instead)."""
        return np.maximum(ctx.gradient(), 0.0) * ctx.A

    def raw(self, ctx: CamContext) -> F32:
        return self.weighted(ctx).sum(axis=-1)
