"""FEM, the Feature Explanation Method (Fuad et al., "Features understanding in 3D CNNs for actions recognition in
video", IPTA 2020, section III; pytorch-grad-cam's FEM): no gradient. A channel's weight is the share of its positions
above its own mean + k standard deviations (k = 2, the k-sigma rule); the map is sum_k weight_k A^k. The same map for
every class.
"""

from __future__ import annotations

import numpy as np

from edge.explain.cam.base import CamContext
from edge.explain.head_ops import F32


class FEM:
    name = "fem"

    def __init__(self, k: float = 2.0) -> None:
        self.k = k

    def weighted(self, ctx: CamContext) -> F32:
        A = ctx.A  # (h, w, k) float32, as the reference's float32 activations: its statistics in float32 too
        threshold = A.mean(axis=(0, 1)) + np.float32(self.k) * A.std(axis=(0, 1))  # (k,) population std
        weights = (threshold < A).mean(axis=(0, 1), dtype=np.float32)  # (k,)
        return A * weights

    def raw(self, ctx: CamContext) -> F32:
        return self.weighted(ctx).sum(axis=-1)
