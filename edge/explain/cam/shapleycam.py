"""Shapley-CAM (Cai et al., "CAMs as Shapley Value-based Explainers", arXiv 2501.06261, eq. 12; pytorch-grad-cam's
ShapleyCAM): Grad-CAM with the gradient corrected by half the Hessian-vector product along the activations,
w_k = mean_ij (dS/dA - 1/2 H A)_ij^k, the map sum_k w_k A^k: the second-order Taylor estimate of each channel's
Shapley value. H is the head's exact Hessian (edge/cam/hvp.py), so this costs one more pass of the head; on a head
that is piecewise linear in A and a logit score, H A = 0 and the map is Grad-CAM's.
"""

from __future__ import annotations

import numpy as np

from edge.explain.cam.base import CamContext
from edge.explain.cam.hvp import hessian_vector_product
from edge.explain.head_ops import F32


class ShapleyCAM:
    name = "shapleycam"

    def channel_weights(self, ctx: CamContext) -> F32:
        score = ctx.score or "logit"
        hv = hessian_vector_product(ctx.head, ctx.head_pass, ctx.class_index, score, ctx.dz, ctx.A)
        return (ctx.gradient().astype(np.float64) - 0.5 * hv).mean(axis=(0, 1)).astype(np.float32)

    def weighted(self, ctx: CamContext) -> F32:
        return ctx.A * self.channel_weights(ctx)

    def raw(self, ctx: CamContext) -> F32:
        return ctx.A.dot(self.channel_weights(ctx))
