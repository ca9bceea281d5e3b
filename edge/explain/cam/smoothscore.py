"""torch-cam's Score-CAM variants with noise or integration, on torch-cam's own Score-CAM: each channel scaled to
[0, 1] at the feature map's size, upsampled to the input (bilinear, corners not aligned), multiplies the input; the
weight is the softmax over channels of the masked input's score minus the unmasked input's score.

- SS-CAM (Wang et al., "SS-CAM: Smoothed Score-CAM for Sharper Visual Feature Localization", arXiv 2006.14255, eq. 3):
  the masks get Gaussian noise (std 2, 35 samples), the score differences are averaged. 35 k trunk passes.
- IS-CAM (Naidu et al., "IS-CAM: Integrated Score-CAM for axiomatic-based explanations", arXiv 2010.03023, eq. 5):
  the masked input is scaled by the running sum of i/N (i = 1..N, N = 10), the differences averaged. 10 k passes.

The noise comes from the method's own NumPy generator (`noise`, replaceable), not torch's: the same algorithm, other
random numbers; the tests give both sides the same noise.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from edge.explain.cam.base import CamContext
from edge.explain.cam.perturb import chunks, minmax_channels, resize_bilinear, scores_of, trunk
from edge.explain.cam.scorecam import softmax
from edge.explain.head_ops import F32

# (shape) -> noise of that shape, float32
Noise = Callable[[tuple[int, ...]], F32]


def _score_differences(ctx: CamContext, masks: F32, scale: float, baseline: float) -> NDArray[np.float64]:
    """score(scale * mask_k * x) - baseline for every channel k of masks (H, W, k)."""
    x, _ = trunk(ctx)
    differences = np.empty(masks.shape[-1], np.float64)
    for part in chunks(masks.shape[-1]):
        picked = masks[:, :, part].transpose(2, 0, 1)[..., None]  # (n, H, W, 1)
        inputs = (np.float32(scale) * (picked * x[None])).astype(np.float32)
        differences[part] = scores_of(ctx, inputs) - baseline
    return differences


class _SmoothedScoreCAM:
    name = ""
    needs_trunk = True  # the imx500 source (the trunk on the sensor) refuses them in one line
    samples = 1

    def trunk_passes(self, k: int) -> int:
        """Feature-model passes per explained class, beyond the frame's own (the unmasked input's score, then the
        masked copies), for k channels."""
        return 1 + self.samples * k

    def masks(self, ctx: CamContext) -> F32:
        x, _ = trunk(ctx)
        return resize_bilinear(minmax_channels(ctx.A), x.shape[:2], align_corners=False).astype(np.float32)  # (H, W, k)

    def sample(self, ctx: CamContext, masks: F32, index: int, baseline: float) -> NDArray[np.float64]:
        raise NotImplementedError

    def channel_weights(self, ctx: CamContext) -> F32:
        x, _ = trunk(ctx)
        baseline = float(scores_of(ctx, x[None])[0])
        masks = self.masks(ctx)
        total = np.zeros(ctx.A.shape[-1], np.float64)
        for index in range(self.samples):
            total += self.sample(ctx, masks, index, baseline)
        return softmax(total / self.samples).astype(np.float32)

    def weighted(self, ctx: CamContext) -> F32:
        return ctx.A * self.channel_weights(ctx)

    def raw(self, ctx: CamContext) -> F32:
        return ctx.A.dot(self.channel_weights(ctx))


class SSCAM(_SmoothedScoreCAM):
    name = "sscam"

    def __init__(self, samples: int = 35, std: float = 2.0, seed: int | None = 0) -> None:
        self.samples, self.std = samples, std
        random = np.random.default_rng(seed)
        self.noise: Noise = lambda shape: (random.standard_normal(shape) * std).astype(np.float32)

    def sample(self, ctx: CamContext, masks: F32, index: int, baseline: float) -> NDArray[np.float64]:
        return _score_differences(ctx, masks + self.noise(masks.shape), 1.0, baseline)


class ISCAM(_SmoothedScoreCAM):
    name = "iscam"

    def __init__(self, samples: int = 10) -> None:
        self.samples = samples

    def sample(self, ctx: CamContext, masks: F32, index: int, baseline: float) -> NDArray[np.float64]:
        scale = sum((i + 1) / self.samples for i in range(index + 1))  # torch-cam's running coefficient
        return _score_differences(ctx, masks, scale, baseline)
