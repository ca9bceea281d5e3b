"""Score-CAM (Wang et al., "Score-CAM: Score-Weighted Visual Explanations for Convolutional Neural Networks", CVPR
Workshops 2020, eq. 5-7; pytorch-grad-cam's ScoreCAM): each channel, upsampled to the input (bilinear, corners
aligned) and scaled to [0, 1], masks the input; the masked input's class score, through the whole model, is the
channel's evidence; the weights are the softmax of those scores over the channels, the map sum_k w_k A^k.

k trunk passes per frame. `budget` limits them to the N channels with the largest spatial mean activation; the others
keep no weight (the softmax runs over the scored channels only): an approximation of Score-CAM, not Score-CAM.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from edge.explain.cam.base import CamContext
from edge.explain.cam.perturb import chunks, minmax_channels, resize_bilinear, scores_of, trunk
from edge.explain.head_ops import F32


def softmax(values: NDArray[np.float64]) -> NDArray[np.float64]:
    e = np.exp(values - values.max())
    return e / e.sum()


def scored_channels(A: F32, budget: int | None) -> NDArray[np.int64]:
    """All channels, or the `budget` channels of the largest spatial mean activation, in channel order."""
    k = A.shape[-1]
    if budget is None or budget >= k:
        return np.arange(k)
    return np.sort(np.argsort(-A.mean(axis=(0, 1)), kind="stable")[:budget])


class ScoreCAM:
    name = "scorecam"
    needs_trunk = True  # the imx500 source (the trunk on the sensor) refuses it in one line

    def __init__(self, budget: int | None = None) -> None:
        self.budget = budget

    def trunk_passes(self, k: int) -> int:
        """Feature-model passes per explained class, beyond the frame's own, for k channels."""
        return k if self.budget is None else min(k, self.budget)

    def channel_weights(self, ctx: CamContext) -> F32:
        x, _ = trunk(ctx)
        masks = minmax_channels(resize_bilinear(ctx.A, x.shape[:2], align_corners=True))  # (H, W, k)
        channels = scored_channels(ctx.A, self.budget)
        scores = np.empty(len(channels), np.float64)
        for part in chunks(len(channels)):
            picked = masks[:, :, channels[part]].transpose(2, 0, 1)[..., None]  # (n, H, W, 1)
            scores[part] = scores_of(ctx, (x[None] * picked).astype(np.float32))
        weights = np.zeros(ctx.A.shape[-1], np.float64)
        weights[channels] = softmax(scores)
        return weights.astype(np.float32)

    def weighted(self, ctx: CamContext) -> F32:
        return ctx.A * self.channel_weights(ctx)

    def raw(self, ctx: CamContext) -> F32:
        return ctx.A.dot(self.channel_weights(ctx))
