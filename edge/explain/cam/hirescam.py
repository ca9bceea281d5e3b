"""HiResCAM (Draelos & Carin, "Use HiResCAM instead of Grad-CAM for faithful explanations of convolutional neural
networks", arXiv 2011.08891, eq. 4): the gradient times the activations element-wise, summed over channels; unlike
Grad-CAM it does not average the gradient over space first.
"""

from __future__ import annotations

from edge.explain.cam.base import CamContext
from edge.explain.head_ops import F32


class HiResCAM:
    name = "hirescam"

    def weighted(self, ctx: CamContext) -> F32:
        """(h, w, k): the per-channel terms the map sums (eigen_smooth projects these instead)."""
        return ctx.gradient() * ctx.A

    def raw(self, ctx: CamContext) -> F32:
        return self.weighted(ctx).sum(axis=-1)
