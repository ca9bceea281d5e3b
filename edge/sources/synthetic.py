"""synthetic: generated frames for benchmarks and soak tests, no camera or files needed."""

from __future__ import annotations

import math
import time

import cv2
import numpy as np

from edge.records import Frame
from edge.sources.base import Pacer, SourceBase, SourceConfig, check_pixels


class SyntheticSource(SourceBase):
    """A coloured disc moving over a gradient, deterministic per frame index; paced to config.fps if > 0."""

    def __init__(self, config: SourceConfig | None = None) -> None:
        self.config = config or SourceConfig()
        self.name = "synthetic"
        check_pixels(self.config.width, self.config.height, self.config, "synthetic frames (--size)")
        # Paced frames behave like a camera (drop when behind); unpaced ones measure throughput (never drop).
        self.live = bool(self.config.fps)
        height, width = self.config.height, self.config.width
        ramp = np.linspace(40, 200, width, dtype=np.float32)  # (W,) float32
        self._background = np.ascontiguousarray(
            np.stack([np.tile(ramp, (height, 1)), np.full((height, width), 90, np.float32),
                      np.tile(ramp[::-1], (height, 1))], axis=2).astype(np.uint8))  # (H, W, 3) uint8 RGB
        self._index = 0
        self._pacer = Pacer(self.config.fps)

    def read(self) -> Frame | None:
        paced_ms = self._pacer.wait()
        image = self._background.copy()
        height, width = image.shape[:2]
        phase = self._index * 0.05
        center = (int(width / 2 + width / 3 * math.cos(phase)), int(height / 2 + height / 3 * math.sin(phase)))
        color = (255, 80 + (self._index * 7) % 170, 20)
        cv2.circle(image, center, max(4, min(height, width) // 6), color, thickness=-1)
        frame = Frame(image=image, index=self._index, timestamp=time.time(), paced_ms=paced_ms)
        self._index += 1
        return frame
