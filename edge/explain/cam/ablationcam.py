"""Ablation-CAM (Desai & Ramaswamy, "Ablation-CAM: Visual Explanations for Deep Convolutional Network via
Gradient-free Localization", WACV 2020, eq. 3; pytorch-grad-cam's AblationCAM): a channel's weight is the relative drop
of the class score when that channel is removed, w_k = (S - S_k) / S, the map sum_k w_k A^k.

pytorch-grad-cam reruns the network from the target layer for each channel; here the head alone runs again, k times,
in batches (the trunk's A does not change). As in pytorch-grad-cam, a channel is removed by setting it to 0 when the
layer's minimum is exactly 0 (after a ReLU), else to that minimum - 1e7: its ablation layer's own rule for layers that
can be negative, where 0 would not remove anything.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from edge.explain.cam.base import CamContext
from edge.explain.head import Head
from edge.explain.head_ops import F32, Activation, Pool2D, Reduce

ABLATION_VALUE = 1e7  # pytorch-grad-cam's AblationLayer
BATCH = 64  # channels ablated per batched head pass: (64, h, w, k) float32 at a time


def batched_logits(head: Head, X: F32) -> NDArray[np.float64]:
    """The head's logits (n, C) float64 for n activation maps X (n, h, w, k): in float64 because Ablation-CAM's
    weights are differences of nearly equal scores (one channel of hundreds removed)."""
    x: NDArray[Any] = X.astype(np.float64)
    for op in head.ops:
        if isinstance(op, Reduce):
            n = x.shape[0]
            if op.mode == "flatten":
                x = x.reshape(n, -1)  # row-major (h, w, k), as the single-map Flatten
            else:
                x = x.mean(axis=(1, 2)) if op.mode == "avg" else x.max(axis=(1, 2))
        elif isinstance(op, Pool2D) or (isinstance(op, Activation) and op.name == "softmax" and x.ndim > 2):
            x = np.stack([op.forward(one) for one in x])
        else:
            x = op.forward(x)  # Dense, Affine and element-wise activations broadcast over the leading axis
    return x


def batched_scores(head: Head, X: F32, class_index: int, score: str) -> NDArray[np.float64]:
    """The explained score (n,) for n activation maps: the class's logit, or its probability under the output
    activation (softmax, or sigmoid)."""
    logits = batched_logits(head, X)
    if score == "logit":
        return logits[:, class_index]
    if head.output_activation == "sigmoid":
        return 1.0 / (1.0 + np.exp(-logits[:, class_index]))
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e[:, class_index] / e.sum(axis=1)


class AblationCAM:
    name = "ablationcam"

    def channel_weights(self, ctx: CamContext) -> F32:
        A, score = ctx.A, ctx.score or "logit"
        k = A.shape[-1]
        lowest = A.min()
        value = np.float32(0.0) if lowest == 0 else np.float32(lowest - np.float32(ABLATION_VALUE))
        original = batched_scores(ctx.head, A[None], ctx.class_index, score)[0]
        if original == 0:  # a relative drop from 0 is undefined (the reference divides by it): no channel counts
            return np.zeros(k, np.float32)
        ablated = np.empty(k, np.float64)
        for start in range(0, k, BATCH):
            channels = np.arange(start, min(start + BATCH, k))
            X = np.repeat(A[None], len(channels), axis=0)  # (n, h, w, k)
            X[np.arange(len(channels)), :, :, channels] = value
            ablated[channels] = batched_scores(ctx.head, X, ctx.class_index, score)
        return ((original - ablated) / original).astype(np.float32)

    def weighted(self, ctx: CamContext) -> F32:
        return ctx.A * self.channel_weights(ctx)

    def raw(self, ctx: CamContext) -> F32:
        return ctx.A.dot(self.channel_weights(ctx))
