"""What "normal" looks like for one camera and one model: per class the mean CAM and the spread of its statistics,
the label mix and confidences, and the frames' brightness and sharpness. Saved as .npz with the bundle's sha256."""

from __future__ import annotations

import contextlib
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from edge.errors import EdgeError
from edge.explain.drift_stats import F64, as_distribution, frame_stats, high_region, map_stats

FORMAT = 1
CONFIDENCE_BINS = 10


class BaselineError(EdgeError):
    """A baseline file is missing, corrupt, or belongs to another model or map size."""


@dataclass
class Baseline:
    """Per class c of C, on the model's (h, w) map grid."""

    model_sha256: str
    class_names: tuple[str, ...]
    mean_maps: F64  # (C, h, w) float64, each a distribution (sums to 1; uniform for a class never seen)
    counts: NDArray[np.int64]  # (C,) frames per class
    stat_mean: F64  # (C, 6) float64, drift_stats.STAT_NAMES
    stat_std: F64  # (C, 6) float64
    confidence_hist: F64  # (C, CONFIDENCE_BINS) float64, each row sums to 1 (0 for unseen classes)
    frame_mean: F64  # (2,) float64, drift_stats.FRAME_STAT_NAMES
    frame_std: F64  # (2,) float64
    regions: NDArray[np.bool_] = field(init=False)  # (C, h, w): each mean map's high-energy region

    def __post_init__(self) -> None:
        self.regions = np.stack([high_region(m) for m in self.mean_maps])

    @property
    def grid(self) -> tuple[int, int]:
        return int(self.mean_maps.shape[1]), int(self.mean_maps.shape[2])

    @property
    def frequencies(self) -> F64:
        """(C,) float64: the label mix."""
        return self.counts / max(1, int(self.counts.sum()))

    def check(self, path: str | Path, model_sha256: str, grid: tuple[int, int]) -> None:
        """Refuse a baseline made with another model or map size, in one line."""
        if model_sha256 != self.model_sha256:
            raise BaselineError(f"{path}: made with model {self.model_sha256[:12]}, not this model "
                                f"({model_sha256[:12]}): make a new one with `python -m edge baseline`")
        if grid != self.grid:
            raise BaselineError(f"{path}: maps of {self.grid[0]}x{self.grid[1]} cells, this model's are "
                                f"{grid[0]}x{grid[1]}: make a new one with `python -m edge baseline`")

    def save(self, path: str | Path) -> None:
        """Write aside and rename: a failed write (full disk) leaves any earlier file and everything else intact."""
        path = Path(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, format=np.int64(FORMAT), model_sha256=np.str_(self.model_sha256),
                         class_names=np.array(self.class_names, dtype=np.str_), mean_maps=self.mean_maps,
                         counts=self.counts, stat_mean=self.stat_mean, stat_std=self.stat_std,
                         confidence_hist=self.confidence_hist, frame_mean=self.frame_mean, frame_std=self.frame_std)
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; a baseline is no secret
            os.replace(tmp, path)
        except OSError as e:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise BaselineError(f"{path}: cannot save the baseline ({e.strerror or e})") from None

    @classmethod
    def load(cls, path: str | Path) -> Baseline:
        try:
            with np.load(path, allow_pickle=False) as z:
                if int(z["format"]) != FORMAT:
                    raise BaselineError(f"{path}: baseline format {int(z['format'])}, this version reads {FORMAT}")
                baseline = cls(str(z["model_sha256"]), tuple(str(n) for n in z["class_names"]),
                               z["mean_maps"].astype(np.float64), z["counts"].astype(np.int64),
                               z["stat_mean"].astype(np.float64), z["stat_std"].astype(np.float64),
                               z["confidence_hist"].astype(np.float64), z["frame_mean"].astype(np.float64),
                               z["frame_std"].astype(np.float64))
        except FileNotFoundError:
            raise BaselineError(f"{path}: no such baseline file") from None
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as e:
            raise BaselineError(f"{path}: not a readable baseline file ({type(e).__name__})") from None
        c = len(baseline.class_names)
        if baseline.mean_maps.ndim != 3 or baseline.mean_maps.shape[0] != c or baseline.stat_mean.shape != (c, 6):
            raise BaselineError(f"{path}: a baseline with inconsistent shapes (corrupt file)")
        return baseline


class BaselineBuilder:
    """Collects explained frames, then makes the Baseline (the inside-region share needs the mean map first)."""

    def __init__(self, model_sha256: str, class_names: tuple[str, ...], grid: tuple[int, int]) -> None:
        self.model_sha256, self.class_names, self.grid = model_sha256, class_names, grid
        self.maps: list[list[NDArray[np.float32]]] = [[] for _ in class_names]  # per class, (h, w) distributions
        self.confidences: list[list[float]] = [[] for _ in class_names]
        self.frames: list[F64] = []  # (2,) frame statistics each

    @property
    def count(self) -> int:
        return len(self.frames)

    def add(self, class_index: int, confidence: float, cam: NDArray[np.float32], image: NDArray[np.uint8]) -> None:
        if cam.shape != self.grid:
            raise BaselineError(f"a map of {cam.shape}, the baseline's grid is {self.grid}")
        self.maps[class_index].append(as_distribution(cam).astype(np.float32))
        self.confidences[class_index].append(confidence)
        self.frames.append(frame_stats(image))

    def build(self) -> Baseline:
        if not self.frames:
            raise BaselineError("no frames to learn a baseline from")
        c, (h, w) = len(self.class_names), self.grid
        means = np.full((c, h, w), 1.0 / (h * w))
        stat_mean, stat_std = np.zeros((c, 6)), np.zeros((c, 6))
        hist = np.zeros((c, CONFIDENCE_BINS))
        for k, maps in enumerate(self.maps):
            if not maps:
                continue
            stack = np.stack(maps).astype(np.float64)  # (n, h, w)
            means[k] = stack.mean(axis=0)
            region = high_region(means[k])
            stats = np.stack([map_stats(m, region) for m in stack])  # (n, 6)
            stat_mean[k], stat_std[k] = stats.mean(axis=0), stats.std(axis=0)
            counts, _ = np.histogram(self.confidences[k], bins=CONFIDENCE_BINS, range=(0.0, 1.0))
            hist[k] = counts / counts.sum()
        frames = np.stack(self.frames)  # (n, 2)
        return Baseline(self.model_sha256, self.class_names, means, np.array([len(m) for m in self.maps], np.int64),
                        stat_mean, stat_std, hist, frames.mean(axis=0), frames.std(axis=0))
