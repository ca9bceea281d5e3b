"""[trigger]: which frames to explain. `always` explains every frame; `motion` only frames that differ from the last
explained one; `interval` one frame every N seconds. Both of the latter also explain a keep-alive frame every so often,
so that the dashboard and MQTT never go stale.

Motion is the classic NVR frame difference: the frame is shrunk to a small grey image (area averaging, then a 3x3 box
blur against sensor noise), compared pixel by pixel with the grey image of the last explained frame, and counts as a
change when more than min_area of its pixels moved by more than threshold grey levels. Comparing with the last
explained frame (not the previous frame) means a slow change (a light dimming, an object creeping in) is explained
once it adds up, and a change that then stays is explained once, not on every frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
from numpy.typing import NDArray

TRIGGER_MODES = ("always", "motion", "interval")


@dataclass(frozen=True)
class TriggerConfig:
    """[trigger]: explain every frame, or only on a change in the scene, or every N seconds."""

    mode: str = field(default="always", metadata={"choices": TRIGGER_MODES, "doc": (
        "always = every frame; motion = frames that differ from the last explained one; interval = every interval_s")})
    interval_s: float = field(default=10.0, metadata={"range": (0.05, 86400.0), "doc": "interval: seconds between "
                                                                                       "explanations"})
    keepalive_s: float = field(default=60.0, metadata={"range": (0.0, 86400.0), "doc": (
        "motion, interval: explain at least this often anyway; 0 = never")})
    threshold: int = field(default=25, metadata={"range": (1, 255), "doc": (
        "motion: grey levels (0-255) a pixel must change by to count as moved")})
    min_area: float = field(default=0.005, metadata={"range": (0.0, 1.0), "doc": (
        "motion: fraction of the frame that must move (0.005 = 0.5 %)")})
    width: int = field(default=80, metadata={"range": (8, 1024), "doc": "motion: width of the grey image compared "
                                                                        "(smaller is cheaper and less noisy)"})


def grey_small(image: NDArray[np.uint8], width: int) -> NDArray[np.int16]:
    """(H, W, 3) uint8 RGB -> (h, width) int16 grey, area-averaged and box-blurred; int16 so differences can go
    negative."""
    height = max(1, round(image.shape[0] * width / image.shape[1]))
    small = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)  # (h, width, 3) uint8
    grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)  # (h, width) uint8
    return np.asarray(cv2.blur(grey, (3, 3)), np.int16)


class MotionDetector:
    """Whether a frame differs from a reference frame (the last explained one) by more than threshold and min_area."""

    def __init__(self, config: TriggerConfig) -> None:
        self.config = config
        self.reference: NDArray[np.int16] | None = None  # (h, w) int16 grey of the last explained frame
        self.moved = 0.0  # fraction of pixels that moved in the last frame compared

    def changed(self, grey: NDArray[np.int16]) -> bool:
        if self.reference is None or self.reference.shape != grey.shape:
            return True
        moved = np.abs(grey - self.reference) > self.config.threshold  # (h, w) bool
        self.moved = float(np.count_nonzero(moved)) / moved.size
        return self.moved > self.config.min_area


class Trigger:
    """Decides per frame whether to explain it; decide() returns why (a word for logs and records) or None."""

    def __init__(self, config: TriggerConfig) -> None:
        if config.mode not in TRIGGER_MODES:
            raise ValueError(f"[trigger] mode {config.mode!r}: expected one of {', '.join(TRIGGER_MODES)}")
        self.config = config
        self.motion = MotionDetector(config)
        self.last_explained: float | None = None  # monotonic time of the last frame decide() said yes to
        self.skipped = 0  # frames decide() said no to (counted, never logged)

    def decide(self, image: NDArray[np.uint8], now: float, *, min_gap_s: float = 0.0) -> str | None:
        """Why to explain this (H, W, 3) uint8 RGB frame at monotonic time now, or None to skip it. min_gap_s (a hot
        CPU's back-off) keeps explanations at least that far apart; a change seen meanwhile is not forgotten: the
        reference stays that of the last explained frame, so the change is explained once the gap has passed."""
        cfg = self.config
        last = self.last_explained
        since = float("inf") if last is None else now - last
        reason: str | None = None
        grey = grey_small(image, cfg.width) if cfg.mode == "motion" and since >= min_gap_s else None
        if since < min_gap_s:
            reason = None
        elif cfg.mode == "always" or last is None:
            reason = "always" if cfg.mode == "always" else "first"
        elif cfg.mode == "interval":
            reason = "interval" if since >= cfg.interval_s else None
        elif grey is not None and self.motion.changed(grey):
            reason = "motion"
        if reason is None and last is not None and cfg.keepalive_s and since >= max(cfg.keepalive_s, min_gap_s):
            reason = "keepalive"
        if reason is None:
            self.skipped += 1
            return None
        self.last_explained = now
        if grey is not None:
            self.motion.reference = grey
        return reason
