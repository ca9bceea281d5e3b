"""Faithfulness scores of a CAM, computed on the device from perturbed copies of the model input.

Each score is defined as its reference implementation defines it, so that a figure here means what it means there:
- confidence_change, drop_in_confidence, increase_in_confidence: pytorch-grad-cam 1.5.7's CamMultImageConfidenceChange,
  DropInConfidence and IncreaseInConfidence (metrics/cam_mult_image.py): the class score of the input multiplied by
  the map, minus the input's own; the drop is max(-change, 0), the increase 1.0 when the change is > 0, else 0.0.
- deletion_auc, insertion_auc (Petsiuk et al., RISE, BMVC 2018): torch-cam 0.5's DeletionInsertionMetric. Pixels are
  ranked by the map, highest first (stable: ties in pixel order); deletion replaces the first n with the baseline (the
  zero model input), insertion starts from the baseline and restores them; the curves have `steps` intervals of
  ceil(P / steps) pixels and the AUC is the trapezoid over the fraction of pixels changed. Lower deletion and higher
  insertion mean a more faithful map.
The map all of them use is pytorch-grad-cam's, as its CAM __call__ returns it (anchor_map). The score of a class is its
probability (pytorch-grad-cam's ClassifierOutputSoftmaxTarget, torch-cam's softmax logits_fn), or its logit.
ROAD needs a sparse linear solver for its imputation and is scored on the workstation (tools/evaluate/road.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
from numpy.typing import NDArray

from edge.explain.head_ops import F32
from edge.explain.trunk_passes import Outputs, TrunkPasses

DEFAULT_STEPS = 20  # torch-cam's DeletionInsertionMetric default
CAM_MULT_SCORES = ("confidence_change", "drop_in_confidence", "increase_in_confidence")
CURVE_SCORES = ("deletion_auc", "insertion_auc")
SCORE_NAMES = (*CAM_MULT_SCORES, *CURVE_SCORES)
# The better direction of each score, for rankings: +1 higher is better, -1 lower is better.
BETTER = {"confidence_change": 1, "drop_in_confidence": -1, "increase_in_confidence": 1, "deletion_auc": -1,
          "insertion_auc": 1, "road_morf": -1, "road_lerf": 1, "road_combined": 1}
_trapezoid = getattr(np, "trapezoid", None) or np.trapz  # NumPy 2 renamed it
NOTHING_POSITIVE = "the map has nothing positive: no ranking to delete or insert pixels by"


@dataclass(slots=True)
class Faithfulness:
    """One map's scores. A score that is undefined for this map is absent from `scores`, and `note` says why."""

    class_index: int
    scores: dict[str, float]
    fractions: F32  # (m,) float32: the fraction of pixels changed at each curve point
    deletion: F32  # (m,) float32: the class score along the deletion curve (empty when undefined)
    insertion: F32  # (m,) float32
    passes: int  # feature-model passes these scores cost
    note: str | None = None
    extra: dict[str, float] = field(default_factory=dict)  # scores added by the caller (ROAD on the workstation)


def _scale(img: F32) -> F32:
    """pytorch-grad-cam's scale_cam_image on one map, without its resize (kept literal: its float32/float64 mix)."""
    img = img - np.min(img)
    return np.asarray(img / (1e-7 + np.max(img)), np.float32)


def anchor_map(cam_raw: F32, size: tuple[int, int]) -> F32:
    """cam_raw (h, w) -> (H, W) float32 in [0, 1] as pytorch-grad-cam's CAM __call__ returns it for one target layer:
    ReLU, min-max scaling, cv2's bilinear resize to the model input, then aggregate_multi_layers' ReLU and scaling."""
    height, width = size
    cam = np.maximum(np.asarray(cam_raw, np.float32), 0)
    resized = np.asarray(cv2.resize(_scale(cam), (width, height)), np.float32)  # (H, W) float32
    return _scale(np.maximum(resized, 0))


def random_cam_raw(A: F32, rng: np.random.Generator) -> F32:
    """pytorch-grad-cam's RandomCAM: channel weights uniform in [-1, 1), the weighted sum of A (h, w, k) -> (h, w)."""
    weights = rng.uniform(-1, 1, size=A.shape[-1])  # (k,) float64, as RandomCAM draws them
    return np.asarray(A.astype(np.float64) @ weights, np.float32)


def curve_counts(num_pixels: int, steps: int) -> list[int]:
    """The number of pixels changed at each curve point: torch-cam's range(0, P, ceil(P / steps)) + [P]."""
    step = (num_pixels + steps - 1) // steps
    return [*range(0, num_pixels, step), num_pixels]


def pixel_ranks(cam: F32) -> NDArray[np.int64]:
    """(H, W) map -> (H*W,) int64 rank of each pixel, 0 = most relevant: torch.argsort(descending, stable) twice."""
    order = np.argsort(-cam.reshape(-1), kind="stable")
    ranks = np.empty_like(order)
    ranks[order] = np.arange(order.size)
    return ranks


class FaithfulnessScorer:
    """Scores maps of one bundle: perturbed inputs through `passes` (a TrunkPasses), nothing else."""

    def __init__(
        self, passes: TrunkPasses, *, score: str = "probability", steps: int = DEFAULT_STEPS, curves: bool = True
    ) -> None:
        """curves=False: the confidence scores only (2 passes instead of 41), for a slow device."""
        if score not in ("probability", "logit"):
            raise ValueError(f"score must be 'probability' or 'logit', got {score!r}")
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        self.passes = passes
        self.score = score
        self.steps = steps
        self.curves = curves
        h, w, c = passes.manifest.input_shape
        self.size = (h, w)
        self.baseline = np.zeros((h, w, c), np.float32)  # torch-cam's default baseline: the zero model input

    def class_scores(self, out: Outputs) -> F32:
        """(n, C) float32 scores of every class, as this scorer scores them."""
        return out.probabilities if self.score == "probability" else out.logits

    def __call__(self, x: F32, cam_raw: F32, class_index: int) -> Faithfulness:
        """x (H, W, c) float32 model input, cam_raw (h, w) the method's map before ReLU, the explained class."""
        cam_raw = np.where(np.isfinite(cam_raw), cam_raw, 0).astype(np.float32)  # NaN/inf: as nothing positive
        return self.score_map(x, anchor_map(cam_raw, self.size), class_index)

    def score_map(self, x: F32, cam: F32, class_index: int) -> Faithfulness:
        """The scores of a map already at the input's size, (H, W) float32 in [0, 1] (anchor_map's)."""
        x = np.asarray(x, np.float32)
        positive = bool(cam.max() > 0) if cam.size else False
        counts = curve_counts(cam.size, self.steps)
        interior = counts[1:-1]
        inputs = [x, x * cam[..., None]]  # the original, and cam_mult_image's perturbation
        if positive and self.curves:
            ranks = pixel_ranks(cam).reshape(self.size)
            inputs.append(self.baseline)
            inputs += [np.where((ranks < n)[..., None], self.baseline, x) for n in interior]  # deletion
            inputs += [np.where((ranks < n)[..., None], x, self.baseline) for n in interior]  # insertion
        before = self.passes.passes
        s = self.class_scores(self.passes(np.stack(inputs)))[:, class_index]  # (n,) float32
        change = np.float32(s[1] - s[0])
        scores = {"confidence_change": float(change), "drop_in_confidence": float(np.maximum(-change, 0)),
                  "increase_in_confidence": float(np.float32(change > 0))}
        fractions = np.asarray(counts, np.float32) / np.float32(cam.size)
        if not positive or not self.curves:
            empty = np.zeros(0, np.float32)
            return Faithfulness(class_index, scores, fractions, empty, empty, self.passes.passes - before,
                                None if positive else NOTHING_POSITIVE)
        m = len(interior)
        deletion = np.concatenate([s[:1], s[3:3 + m], s[2:3]])  # (m + 2,) float32: x ... baseline
        insertion = np.concatenate([s[2:3], s[3 + m:], s[:1]])  # baseline ... x
        scores["deletion_auc"] = float(_trapezoid(deletion, fractions))
        scores["insertion_auc"] = float(_trapezoid(insertion, fractions))
        return Faithfulness(class_index, scores, fractions, deletion, insertion, self.passes.passes - before)
