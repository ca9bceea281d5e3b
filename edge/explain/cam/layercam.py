"""LayerCAM (Jiang et al., "LayerCAM: Exploring Hierarchical Class Activation Maps for Localization", IEEE TIP 30,
2021, eq. 5-6): element-wise weights relu(dS/dA_ij^k) times A_ij^k, summed over channels.
"""

from __future__ import annotations

import numpy as np

from edge.explain.cam.base import CamContext
from edge.explain.head_ops import F32


class LayerCAM:
    name = "layercam"

    def raw(self, ctx: CamContext) -> F32:
        return (np.maximum(ctx.gradient(), 0.0) * ctx.A).sum(axis=-1)
