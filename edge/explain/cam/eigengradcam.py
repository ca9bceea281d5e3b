"""Eigen-Grad-CAM (pytorch-grad-cam's EigenGradCAM: Eigen-CAM, Muhammad & Yeasin, arXiv 2008.00299, applied to the
class-specific product of gradient and activations): the first principal component of dS/dA * A over the (h*w)
positions. pytorch-grad-cam's sign is its SVD's (arbitrary); here the map correlates positively with sum_k dS/dA^k A^k.
"""

from __future__ import annotations

from edge.explain.cam.base import CamContext
from edge.explain.cam.projection import first_component
from edge.explain.head_ops import F32


class EigenGradCAM:
    name = "eigengradcam"

    def raw(self, ctx: CamContext) -> F32:
        product = ctx.gradient() * ctx.A  # (h, w, k)
        return first_component(product, product.sum(axis=-1))
