"""Random CAM (pytorch-grad-cam's RandomCAM): channel weights drawn uniformly from [-1, 1), the map sum_k w_k A^k.
Not an explanation: the floor that a faithfulness score of a real method must beat.

pytorch-grad-cam draws from NumPy's global legacy generator (np.random.uniform), so its maps repeat only after
np.random.seed. Here each instance has its own legacy RandomState: the same draws as the reference after
np.random.seed(seed), without reading or disturbing the process's global generator. Every call draws new weights.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from edge.explain.cam.base import CamContext
from edge.explain.head_ops import F32


class RandomCAM:
    name = "randomcam"

    def __init__(self, seed: int | None = 0) -> None:
        self.random = np.random.RandomState(seed)

    def channel_weights(self, ctx: CamContext) -> NDArray[np.float64]:
        # (1, k) as the reference draws for a batch of one: the same sequence of numbers, kept in float64 as there
        return self.random.uniform(-1, 1, size=(1, ctx.A.shape[-1]))[0]

    def weighted(self, ctx: CamContext) -> NDArray[np.float64]:
        return ctx.A * self.channel_weights(ctx)  # (h, w, k) float64

    def raw(self, ctx: CamContext) -> F32:
        return self.weighted(ctx).sum(axis=-1).astype(np.float32)
