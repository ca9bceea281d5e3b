"""The Pi's own preview (DRM or Qt) with the heatmap handed over as an RGBA overlay that the Pi composites."""

from __future__ import annotations

import logging
from typing import Protocol

import cv2
import numpy as np
from numpy.typing import NDArray

from edge.render import RenderConfig, heatmap_rgba
from edge.sinks.base import Result

_LOGGER = logging.getLogger(__name__)


class OverlayTarget(Protocol):
    """What the sink needs from the picamera2 source."""

    def set_overlay(self, overlay: NDArray[np.uint8] | None) -> None: ...


class Picamera2OverlaySink:
    """Per frame: heatmap + label as an (h, w, 4) uint8 RGBA array for Picamera2.set_overlay.

    The overlay is built at a reduced size (the preview scales it to the window), so the frame itself is never copied.
    """

    name = "picamera2-overlay"

    def __init__(self, target: OverlayTarget, config: RenderConfig, size: tuple[int, int] = (240, 320)) -> None:
        self.target = target
        self.config = config
        self.size = size  # (height, width) of the overlay

    def open(self) -> None:
        """The source starts the preview; nothing to acquire here."""

    def handle(self, result: Result) -> None:
        self.target.set_overlay(self.build(result))

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
        try:
            self.target.set_overlay(None)
        except RuntimeError as e:  # the preview may already be gone at shutdown
            _LOGGER.debug("clearing the overlay: %s", e)
