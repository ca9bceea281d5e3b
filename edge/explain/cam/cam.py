"""CAM (Zhou et al., "Learning Deep Features for Discriminative Localization", arXiv 1512.04150, eq. 2): for a network
ending in global average pooling -> linear layers, the map of class c is sum_k w_k^c A^k with w^c the class's
effective weights. Defined only for such heads; Grad-CAM of the logit equals it divided by h*w.
"""

from __future__ import annotations

import numpy as np

from edge.errors import MethodError
from edge.explain.cam.base import CamContext
from edge.explain.head import Head
from edge.explain.head_ops import F32, Reduce


def is_gap_linear(head: Head) -> bool:
    """The head starts with global average pooling and is linear after it (the bundle then has constant CAM weights)."""
    first = head.ops[0] if head.ops else None
    return isinstance(first, Reduce) and first.mode == "avg" and head.cam_weights is not None


class CAM:
    name = "cam"

    def weighted(self, ctx: CamContext) -> F32:
        return ctx.A * self.channel_weights(ctx)

    def raw(self, ctx: CamContext) -> F32:
        return ctx.A @ self.channel_weights(ctx)

    def channel_weights(self, ctx: CamContext) -> F32:
        if not is_gap_linear(ctx.head):
            raise MethodError(
                "method 'cam' needs a head of global average pooling followed by linear layers (GAP -> Dense); "
                "this model's head is not: use gradcam, which generalises it"
            )
        h, w, _ = ctx.head.input_shape
        assert ctx.head.cam_weights is not None
        return ctx.head.cam_weights[:, ctx.class_index] * np.float32(h * w)  # (k,): the class's Dense weights
