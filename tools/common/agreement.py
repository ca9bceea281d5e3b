"""How closely a bundle follows a reference bundle (e.g. int8 features against float): frame by frame, the same top-1
class, and the Pearson correlation of the two raw heatmaps of the reference's class. TensorFlow-free."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from edge.explain.explainer import Explainer


class Agreement:
    def __init__(self, reference: Explainer, other: Explainer) -> None:
        self.reference, self.other = reference, other
        self.frames = 0
        self.same_top1 = 0
        self.correlations: list[float] = []

    def add(self, rgb: NDArray[np.uint8]) -> bool:
        """Explain one (H, W, 3) uint8 RGB frame with both bundles; True when their top-1 classes agree."""
        a = self.reference.explain(rgb)
        b = self.other.explain(rgb, target=a.class_index)  # the same class's map, so the maps are comparable
        same = int(np.argmax(b.probabilities)) == a.class_index
        self.frames += 1
        self.same_top1 += same
        x, y = a.cam_raw.ravel(), b.cam_raw.ravel()
        if x.std() > 0 and y.std() > 0:  # a flat map has no correlation; it is counted in frames only
            self.correlations.append(float(np.corrcoef(x, y)[0, 1]))
        return same

    def summary(self) -> dict[str, float]:
        if self.frames == 0:
            raise ValueError("no frames were compared")
        return {"frames": float(self.frames), "top1_agreement": self.same_top1 / self.frames,
                "cam_correlation": float(np.mean(self.correlations)) if self.correlations else float("nan"),
                "cam_correlation_min": float(np.min(self.correlations)) if self.correlations else float("nan")}
