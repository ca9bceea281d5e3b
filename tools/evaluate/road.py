"""ROAD (Rong et al., ICML 2022) as pytorch-grad-cam 1.5.7 computes it, on the bundle: SciPy's sparse solver, so
workstation only.

ROADMostRelevantFirst(80) imputes the pixels whose map value is at or above the map's 80th percentile, and
ROADLeastRelevantFirst(20) those at or below its 80th (the 20th of 1 - map), by noisy linear imputation: each removed
pixel becomes the weighted mean of its 8 neighbours (1/6 the sides, 1/12 the corners), one sparse linear system for all
of them, plus Gaussian noise of sigma `noise` (0.01 by default). The score is the class score of the imputed input minus
the input's own: a faithful map loses much with its most relevant pixels gone (road_morf low) and little with its least
relevant gone (road_lerf high). road_combined is (road_lerf - road_morf) / 2, ROADCombined's formula at these two
percentiles.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import coo_matrix
from scipy.sparse.linalg import spsolve

from edge.explain.faithfulness import FaithfulnessScorer
from edge.explain.head_ops import F32

MORF_PERCENTILE = 80
LERF_PERCENTILE = 20
NOISE = 0.01
# pytorch-grad-cam's neighbors_weights: (row offset, column offset), weight
NEIGHBOURS = (((1, 1), 1 / 12), ((0, 1), 1 / 6), ((-1, 1), 1 / 12), ((1, -1), 1 / 12), ((0, -1), 1 / 6),
              ((-1, -1), 1 / 12), ((1, 0), 1 / 6), ((-1, 0), 1 / 6))


def keep_mask(cam: F32, percentile: float, most_relevant_first: bool) -> NDArray[np.bool_]:
    """(H, W) True where the pixel stays: RemoveMostRelevantFirst's `mask < percentile(mask)` (on 1 - map for least
    relevant first), the threshold compared in float32 as torch compares a float32 tensor with a scalar."""
    mask = cam if most_relevant_first else np.float32(1) - cam
    threshold = np.float32(np.percentile(mask, percentile))
    return np.asarray(mask < threshold)


def impute(x: F32, keep: NDArray[np.bool_], noise: float, rng: np.random.Generator) -> F32:
    """x (H, W, c) float32 with the pixels where keep is False replaced by NoisyLinearImputer's solution."""
    height, width, channels = x.shape
    flat = x.reshape(-1, channels).astype(np.float64)  # (H*W, c)
    keepflat = keep.reshape(-1)
    unknown = np.flatnonzero(~keepflat)  # the pixels to impute, in pixel order
    n = unknown.size
    if n == 0:
        return x.copy()
    vidx = np.zeros(keepflat.size, np.int64)
    vidx[unknown] = np.arange(n)
    rows, cols, vals = [np.arange(n)], [np.arange(n)], []
    b = np.zeros((n, channels))  # (n, c) float64
    diagonal = np.ones(n)
    r0, c0 = unknown // width, unknown % width
    for (dr, dc), weight in NEIGHBOURS:
        r, c = r0 + dr, c0 + dc
        valid = (r >= 0) & (c >= 0) & (r < height) & (c < width)
        ids = np.flatnonzero(valid)
        coords = (r * width + c)[valid]
        known = keepflat[coords]
        b[ids[known]] -= weight * flat[coords[known]]
        rows.append(ids[~known])
        cols.append(vidx[coords[~known]])
        vals.append(np.full(int((~known).sum()), weight))
        diagonal[~valid] -= weight
    A = coo_matrix((np.concatenate([-diagonal, *vals]), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    solution = spsolve(A.tocsc(), b).reshape(n, channels).astype(np.float32)  # torch.tensor(..., dtype=float)
    out = x.reshape(-1, channels).copy()
    out[unknown] = solution + np.float32(noise) * rng.standard_normal(solution.shape).astype(np.float32)
    return out.reshape(x.shape)


def road_scores(scorer: FaithfulnessScorer, x: F32, cam: F32, class_index: int, *, noise: float = NOISE,
                rng: np.random.Generator | None = None) -> dict[str, float]:
    """road_morf, road_lerf and road_combined of one map at the input's size (anchor_map's), in three feature-model
    passes."""
    if cam.shape != scorer.size:
        raise ValueError(f"ROAD needs the map at the input's size {scorer.size} (anchor_map's), got {cam.shape}")
    rng = rng or np.random.default_rng(0)
    imputed = [impute(x, keep_mask(cam, MORF_PERCENTILE, True), noise, rng),
               impute(x, keep_mask(cam, LERF_PERCENTILE, False), noise, rng)]
    s = scorer.class_scores(scorer.passes(np.stack([x, *imputed])))[:, class_index]  # (3,) float32
    morf, lerf = np.float32(s[1] - s[0]), np.float32(s[2] - s[0])
    return {"road_morf": float(morf), "road_lerf": float(lerf), "road_combined": float((lerf - morf) / 2)}
