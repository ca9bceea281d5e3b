"""The Pi's own preview (DRM or Qt) with the heatmap handed over as an RGBA overlay that the Pi composites."""

from __future__ import annotations

import logging
import time
from typing import Protocol

import cv2
import numpy as np
from numpy.typing import NDArray

from edge.explain.render import RenderConfig, heatmap_rgba
from edge.records import Result

_LOGGER = logging.getLogger(__name__)


class OverlayTarget(Protocol):
    """What the sink needs from the picamera2 source."""

    def set_overlay(self, overlay: NDArray[np.uint8] | None) -> None: ...


class Picamera2OverlaySink:
    """Heatmap + label as an (h, w, 4) uint8 RGBA array for Picamera2.set_overlay, sent only when it changed and at
    most max_rate_hz times a second.

    The overlay is built at a reduced size (the preview scales it to the window), so the frame itself is never copied.
    Each set_overlay makes the DRM preview build a framebuffer and commit it synchronously under its lock, so frames
    within 1 / max_rate_hz of the last overlay sent are not even drawn. The first set_overlay error (DRM: "Overlays not
    supported on this device" where no overlay plane is free) turns the sink off with one warning; the preview and
    the run go on.
    """

    name = "picamera2-overlay"
    live_view = True  # shows every frame, explained or not

    def __init__(self, target: OverlayTarget, config: RenderConfig, size: tuple[int, int] = (240, 320),
                 max_rate_hz: float = 10.0) -> None:
        self.target = target
        self.config = config
        self.size = size  # (height, width) of the overlay
        self.min_interval_s = 1.0 / max_rate_hz if max_rate_hz > 0 else 0.0
        self.disabled = False
        self.sent = 0
        self.skipped = 0  # frames not drawn: too soon after the last overlay, no preview, or unchanged
        self._last: NDArray[np.uint8] | None = None
        self._last_sent_at = -float("inf")

    def open(self) -> None:
        """The source starts the preview; nothing to acquire here."""

    def handle(self, result: Result) -> None:
        now = time.monotonic()
        if self.disabled or now - self._last_sent_at < self.min_interval_s or not getattr(
                self.target, "wants_overlay", True):
            self.skipped += 1
            return
        overlay = self.build(result)
        if self._last is not None and np.array_equal(overlay, self._last):
            self.skipped += 1
            return
        if self._send(overlay):
            self._last, self._last_sent_at = overlay, now
            self.sent += 1

    def _send(self, overlay: NDArray[np.uint8] | None) -> bool:
        try:
            self.target.set_overlay(overlay)
        except (RuntimeError, OSError) as e:
            self.disabled = True
            _LOGGER.warning("picamera2 overlay turned off: set_overlay failed (%s); the preview goes on without it", e)
            return False
        return True

    def build(self, result: Result) -> NDArray[np.uint8]:
        ex = result.explanation
        overlay = heatmap_rgba(result.cam, self.size, self.config, ex.class_index)  # (h, w, 4) uint8 RGBA
        if self.config.show_label:
            text = f"{ex.label} {float(ex.probabilities[ex.class_index]):.0%}"
            scale = max(0.4, self.size[0] / 400)
            thickness = max(1, round(scale * 2))
            (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
            cv2.rectangle(overlay, (0, 0), (tw + 8, th + base + 8), (0, 0, 0, 200), thickness=-1)
            # LINE_8, not LINE_AA: anti-aliasing would blend the alpha channel too and leave the text translucent.
            cv2.putText(overlay, text, (4, th + 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255, 255), thickness,
                        cv2.LINE_8)
        return overlay

    def close(self) -> None:
        if self._last is None or self.disabled:
            return
        self._last = None
        try:
            self.target.set_overlay(None)
        except (RuntimeError, OSError) as e:  # the preview may already be gone at shutdown
            _LOGGER.debug("clearing the overlay: %s", e)
