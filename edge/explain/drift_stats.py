"""The numbers explanation drift is judged on: statistics of one CAM and of one frame (NumPy and OpenCV)."""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]
# A frame is reduced to about this many pixels across before its statistics: the cost stays flat at any capture size.
THUMB_WIDTH = 64
# The baseline's high-energy region: the fewest cells holding this share of its mean map's energy.
REGION_SHARE = 0.5


def as_distribution(cam: F32) -> F64:
    """(h, w) map -> (h, w) float64 summing to 1 (uniform for an all-zero map)."""
    m = np.asarray(cam, np.float64).clip(0.0)
    total = m.sum()
    return m / total if total > 0 else np.full(m.shape, 1.0 / m.size)


def centroid(p: F64) -> F64:
    """(2,) float64: the energy centroid (row, column) in map cells."""
    rows, cols = np.indices(p.shape)
    return np.array([(p * rows).sum(), (p * cols).sum()])


def peak(p: F64) -> F64:
    """(2,) float64: the peak cell (row, column)."""
    return np.array(np.unravel_index(int(p.argmax()), p.shape), np.float64)


def entropy(p: F64) -> float:
    """The map's entropy in bits, divided by its maximum (0: one cell, 1: flat)."""
    q = p[p > 0]
    return float(-(q * np.log2(q)).sum() / np.log2(p.size))


def high_region(p: F64, share: float = REGION_SHARE) -> NDArray[np.bool_]:
    """(h, w) bool: the fewest cells whose energy reaches share of the total."""
    order = np.argsort(-p, axis=None, kind="stable")
    cells = int(np.searchsorted(np.cumsum(p.ravel()[order]), share)) + 1
    mask = np.zeros(p.size, bool)
    mask[order[:cells]] = True
    return mask.reshape(p.shape)


def map_stats(p: F64, region: NDArray[np.bool_]) -> F64:
    """(6,) float64: centroid row, col, peak row, col, share inside region, entropy (STAT_NAMES)."""
    return np.concatenate([centroid(p), peak(p), [float(p[region].sum()), entropy(p)]])


STAT_NAMES = ("centroid_row", "centroid_col", "peak_row", "peak_col", "inside_share", "entropy")


def thumbnail(image: NDArray[np.uint8]) -> F32:
    """(h, w) float32 in [0, 255]: the green channel (most of luma, a third of the work) of an (H, W, 3) uint8 RGB
    frame, strided to about THUMB_WIDTH across."""
    step = max(1, image.shape[1] // THUMB_WIDTH)
    return image[::step, ::step, 1].astype(np.float32)


def frame_stats(image: NDArray[np.uint8]) -> F64:
    """(2,) float64: brightness (mean green, 0..255) and sharpness (log10 of 1 + the variance of the Laplacian)."""
    g = thumbnail(image)
    # OpenCV's 3x3 aperture (ksize 1) is the 4-neighbour Laplacian; the border rows and columns are left out
    lap = np.asarray(cv2.Laplacian(g, cv2.CV_32F, ksize=1), np.float32)[1:-1, 1:-1]  # (h - 2, w - 2) float32
    std = float(np.asarray(cv2.meanStdDev(lap)[1]).item())
    return np.array([float(cv2.mean(g)[0]), float(np.log10(1.0 + std * std))])


FRAME_STAT_NAMES = ("brightness", "sharpness")


def shift_map(p: F64, dy: int, dx: int) -> F64:
    """p moved by (dy, dx) cells, zeros where nothing moved in."""
    out = np.zeros_like(p)
    h, w = p.shape
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = p[max(-dy, 0):h - max(dy, 0),
                                                                    max(-dx, 0):w - max(dx, 0)]
    return out


def correlation(a: F64, b: F64) -> float:
    """Pearson correlation of two maps (0 when either is flat)."""
    a0, b0 = a - a.mean(), b - b.mean()
    den = float(np.sqrt((a0 * a0).sum() * (b0 * b0).sum()))
    return float((a0 * b0).sum() / den) if den > 0 else 0.0


def best_shift(reference: F64, current: F64, reach: int = 3) -> tuple[int, int, float]:
    """The displacement (dy, dx) within reach cells that moves reference closest to current, and that correlation."""
    best = (0, 0, correlation(reference, current))
    for dy in range(-reach, reach + 1):
        for dx in range(-reach, reach + 1):
            if (dy or dx) and (c := correlation(shift_map(reference, dy, dx), current)) > best[2]:
                best = (dy, dx, c)
    return best
