"""Smooth Grad-CAM++ (Omeiza et al., "Smooth Grad-CAM++: An Enhanced Inference Level Visualization Technique for Deep
Convolutional Neural Network Models", arXiv 1908.01224, eq. 7-9; torch-cam's SmoothGradCAMpp): Grad-CAM++'s weights
with the gradient's powers averaged over n noisy copies of the input (Gaussian, std 0.3 on the model input, n = 4),

    alpha = mean(g^2) / (2 mean(g^2) + sum_ab mean(g^3)_ab A_ab + 1e-8),  w_k = sum_ij alpha_ij^k relu(g_n)_ij^k,

as torch-cam computes them: the cube's spatial sum weights each position by its own activation, and the ReLU'd gradient
is the last noisy copy's. n trunk passes, each with the head's exact gradient. The map weights the frame's own A
(torch-cam weights the activations its hook kept last, the last noisy copy's: docs/cam-methods.md).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from edge.explain.cam.base import CamContext
from edge.explain.cam.perturb import trunk
from edge.explain.head_ops import F32

EPS = 1e-8  # torch-cam's


class SmoothGradCAMpp:
    name = "smoothgradcampp"
    needs_trunk = True  # the imx500 source (the trunk on the sensor) refuses it in one line

    def __init__(self, samples: int = 4, std: float = 0.3, seed: int | None = 0) -> None:
        self.samples = samples
        random = np.random.default_rng(seed)
        self.noise: Callable[[tuple[int, ...]], F32] = (
            lambda shape: (random.standard_normal(shape) * std).astype(np.float32))

    def trunk_passes(self, k: int) -> int:
        """Feature-model passes per explained class, beyond the frame's own: one per noisy copy."""
        return self.samples

    def channel_weights(self, ctx: CamContext) -> F32:
        x, features = trunk(ctx)
        head, score = ctx.head, ctx.score or "logit"
        noisy = np.stack([x + self.noise(x.shape) for _ in range(self.samples)]).astype(np.float32)
        g2 = np.zeros(ctx.A.shape, np.float64)
        g3 = np.zeros(ctx.A.shape, np.float64)
        g = g2
        for A in features(noisy):
            hp = head.forward(A)
            g = head.gradient(hp, head.score_gradient(hp, ctx.class_index, score)).astype(np.float64)
            g2 += g * g
            g3 += g * g * g
        g2 /= self.samples
        g3 /= self.samples
        alpha = g2 / (2.0 * g2 + (g3 * ctx.A).sum(axis=(0, 1)) + EPS)
        return (alpha * np.maximum(g, 0.0)).sum(axis=(0, 1)).astype(np.float32)

    def weighted(self, ctx: CamContext) -> F32:
        return ctx.A * self.channel_weights(ctx)

    def raw(self, ctx: CamContext) -> F32:
        return ctx.A.dot(self.channel_weights(ctx))
