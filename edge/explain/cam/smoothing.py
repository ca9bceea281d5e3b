"""pytorch-grad-cam's two smoothing options, for the device's CAM methods (its base_cam.py, version 1.5.7).

- eigen_smooth: the map is the first principal component of the method's weighted activations (h, w, k) instead of
  their sum over channels (edge/explain/cam/projection.py; its sign fixed to correlate with the unsmoothed map). As
  in pytorch-grad-cam it does not apply to the methods whose map is already a projection or that do not weight the
  activations through its get_cam_image: Eigen-CAM, Eigen-Grad-CAM, KPCA-CAM and FEM ignore it.
- aug_smooth: test-time augmentation with ttach's Compose([HorizontalFlip(), Multiply([0.9, 1, 1.1])]): six copies of
  the model input (flipped or not, times 0.9, 1 or 1.1), each through the trunk and the head for the same class,
  each copy's map ReLU'd and min-max scaled (pytorch-grad-cam's scale_cam_image), flipped back, and the six averaged.
  Five trunk passes beyond the frame's own (the unflipped copy times 1 is the frame); a trunk-pass method pays its
  own passes six times.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass

import numpy as np

from edge.explain.cam.base import CamContext, CamMethod
from edge.explain.cam.perturb import trunk
from edge.explain.cam.projection import first_component
from edge.explain.head_ops import F32

_LOGGER = logging.getLogger(__name__)

# (flip, factor) in ttach's order: itertools.product of HorizontalFlip's [False, True] and Multiply's [0.9, 1, 1.1]
AUGMENTATIONS: tuple[tuple[bool, float], ...] = tuple(itertools.product((False, True), (0.9, 1.0, 1.1)))
AUG_SMOOTH_PASSES = len(AUGMENTATIONS) - 1  # trunk passes beyond the frame's own
# The methods whose map pytorch-grad-cam computes without get_cam_image's weighted sum: eigen_smooth does not apply
EIGEN_SMOOTH_IGNORED = ("eigencam", "eigengradcam", "kpcacam", "fem")
_SCALE_EPS = 1e-7  # pytorch-grad-cam's scale_cam_image: (m - min) / (1e-7 + max)
_warned: set[str] = set()


@dataclass(frozen=True, slots=True)
class Smoothing:
    """Which of pytorch-grad-cam's options to apply: aug_smooth, eigen_smooth."""

    aug: bool = False
    eigen: bool = False

    def describe(self) -> str:
        """'aug_smooth + eigen_smooth', one of them, or 'none': for logs and the dashboard."""
        return " + ".join(name for name, on in (("aug_smooth", self.aug), ("eigen_smooth", self.eigen)) if on) or "none"


def eigen_smooth_applies(method: CamMethod) -> bool:
    return method.name not in EIGEN_SMOOTH_IGNORED and hasattr(method, "weighted")


def raw_map(method: CamMethod, ctx: CamContext, eigen_smooth: bool = False) -> F32:
    """The method's raw map (h, w), or with eigen_smooth the first principal component of its weighted activations."""
    if not eigen_smooth:
        return method.raw(ctx)
    if not eigen_smooth_applies(method):
        if method.name not in _warned:
            _warned.add(method.name)
            _LOGGER.warning("eigen_smooth does not apply to %s (as in pytorch-grad-cam): its own map is used",
                            method.name)
        return method.raw(ctx)
    weighted = method.weighted(ctx)  # type: ignore[attr-defined]  # (h, w, k)
    return first_component(weighted, weighted.sum(axis=-1))


def scale_map(cam_raw: F32) -> F32:
    """pytorch-grad-cam's scale_cam_image of the ReLU'd map, at its own size: (m - min) / (1e-7 + max), float32."""
    cam = np.maximum(np.nan_to_num(cam_raw.astype(np.float32), nan=0.0), np.float32(0.0))
    cam = cam - cam.min()
    return (cam / (np.float32(_SCALE_EPS) + cam.max())).astype(np.float32)


# the copies that need a trunk pass of their own: all but the frame itself
_OTHERS = tuple((flip, factor) for flip, factor in AUGMENTATIONS if (flip, factor) != (False, 1.0))


def augment(x: F32, flip: bool, factor: float) -> F32:
    """One augmented copy of the model input x (H, W, c): flipped left-right, then multiplied (ttach's order)."""
    out = x[:, ::-1] if flip else x
    return out if factor == 1.0 else (out * np.float32(factor)).astype(np.float32)


AugmentedPasses = dict[tuple[bool, float], tuple[F32, F32]]  # (flip, factor) -> (the copy, its A)


def augmented_passes(ctx: CamContext) -> AugmentedPasses:
    """The five copies beside the frame and their trunk passes: the same for every class of the frame."""
    x, features = trunk(ctx)
    copies = np.stack([augment(x, flip, factor) for flip, factor in _OTHERS])  # (5, H, W, c) float32
    return dict(zip(_OTHERS, zip(copies, features(copies), strict=True), strict=True))


def aug_smoothed_map(method: CamMethod, ctx: CamContext, eigen_smooth: bool = False,
                     passes: AugmentedPasses | None = None) -> F32:
    """The mean (h, w) float32 over AUGMENTATIONS of each copy's scaled map, flipped back: pytorch-grad-cam's
    aug_smooth output at the feature map's size. ctx: the frame's own context (its x and trunk are needed); passes:
    augmented_passes(ctx) when another class of the frame already made them."""
    passes = augmented_passes(ctx) if passes is None else passes
    head, score = ctx.head, ctx.score or "logit"
    maps = []
    for flip, factor in AUGMENTATIONS:
        if (flip, factor) == (False, 1.0):
            one = ctx
        else:
            copy, A = passes[flip, factor]
            hp = head.forward(A)
            one = CamContext(A, head, hp, head.score_gradient(hp, ctx.class_index, score), ctx.class_index, ctx.score,
                             copy, ctx.trunk)
        scaled = scale_map(raw_map(method, one, eigen_smooth))
        maps.append(scaled[:, ::-1] if flip else scaled)  # the de-augmentation: the flip undone, the factor kept
    return np.mean(np.array(maps, np.float32), axis=0)  # (6, h, w) -> (h, w), in float32 as the reference
