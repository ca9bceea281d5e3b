"""Drawing an explanation onto a frame: pure functions that return new uint8 RGB images, plus a temporal smoother.

Every function takes RGB uint8 frames and never writes into its inputs; OpenCV does the per-pixel work.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import cv2
import numpy as np
from numpy.typing import NDArray

from edge.explainer import Explanation

U8 = NDArray[np.uint8]
F32 = NDArray[np.float32]

COLORMAPS = ("jet", "tint")
# One colour per class for the "tint" colormap (RGB), as in the fruit tutorial: each class its own colour.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (255, 40, 40), (255, 150, 0), (40, 200, 40), (40, 120, 255), (200, 60, 255),
    (0, 210, 210), (255, 220, 0), (255, 80, 170), (140, 90, 40), (160, 160, 160),
)
_FONT = cv2.FONT_HERSHEY_SIMPLEX


@dataclass(frozen=True)
class RenderConfig:
    """[render]: how the heatmap and the text are drawn."""

    colormap: str = field(default="jet", metadata={"choices": COLORMAPS, "doc": "jet colormap or per-class tint"})
    alpha: float = field(default=0.45, metadata={"range": (0.0, 1.0), "doc": "opacity of the heatmap"})
    threshold: float = field(default=0.2, metadata={"range": (0.0, 1.0), "doc": "CAM values below stay uncoloured"})
    smoothing: float = field(default=0.0, metadata={"range": (0.0, 0.99), "doc": "EMA weight of the previous map"})
    show_label: bool = field(default=True, metadata={"doc": "draw class and confidence"})
    show_top_k: bool = field(default=True, metadata={"doc": "draw the top-k panel"})
    show_fps: bool = field(default=True, metadata={"doc": "draw the frame rate"})


def upsample(cam: F32, size: tuple[int, int]) -> F32:
    """A (h, w) CAM in [0, 1] resized to size = (H, W), bilinear, still in [0, 1]."""
    height, width = size
    # up: (H, W) float32
    up = np.asarray(cv2.resize(np.asarray(cam, np.float32), (width, height), interpolation=cv2.INTER_LINEAR))
    return np.clip(up, 0.0, 1.0).astype(np.float32, copy=False)


def colorize(cam: F32, colormap: str = "jet", class_index: int = 0) -> U8:
    """Colours (H, W, 3) uint8 RGB for a CAM: OpenCV's jet, or the class's palette colour scaled by the CAM."""
    levels = np.asarray(cv2.convertScaleAbs(np.clip(cam, 0.0, 1.0), alpha=255.0))  # (H, W) uint8, rounded
    if colormap == "jet":
        return np.asarray(cv2.cvtColor(cv2.applyColorMap(levels, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB))
    if colormap == "tint":
        color = np.asarray(PALETTE[class_index % len(PALETTE)], np.float32) / 255.0  # (3,) float32
        return np.asarray(levels[:, :, None] * color + 0.5, np.uint8)
    raise ValueError(f"unknown colormap {colormap!r}; choose one of {', '.join(COLORMAPS)}")


def heat_weights(cam: F32, alpha: float, threshold: float) -> F32:
    """Per-pixel opacity (H, W) float32: alpha where the CAM reaches the threshold, 0 elsewhere."""
    return np.where(cam >= threshold, np.float32(alpha), np.float32(0.0)).astype(np.float32)


def blend(frame: U8, colors: U8, weights: F32) -> U8:
    """frame * (1 - w) + colors * w per pixel; all (H, W, ...) with weights (H, W) float32 in [0, 1]."""
    w = cv2.merge([weights] * 3)  # (H, W, 3) float32
    mixed = cv2.add(cv2.multiply(frame.astype(np.float32), 1.0 - w), cv2.multiply(colors.astype(np.float32), w))
    return np.asarray(np.clip(mixed + 0.5, 0, 255), np.uint8)


@lru_cache(maxsize=64)
def _lut(colormap: str, class_index: int) -> U8:
    """(256, 1, 3) uint8 RGB colour for every CAM level 0..255: one table lookup colours a whole frame."""
    levels = np.arange(256, dtype=np.float32).reshape(256, 1) / 255.0  # (256, 1) float32
    return np.ascontiguousarray(colorize(levels, colormap, class_index).reshape(256, 1, 3))


def overlay_heatmap(frame: U8, cam: F32, config: RenderConfig, class_index: int = 0) -> U8:
    """The frame (H, W, 3) uint8 RGB with the CAM upsampled, coloured and blended on top where >= threshold."""
    height, width = frame.shape[:2]
    # Quantise the small map first and upsample uint8 levels: no full-frame float arrays, no colour conversion.
    levels = np.asarray(cv2.convertScaleAbs(np.clip(np.asarray(cam, np.float32), 0.0, 1.0), alpha=255.0))
    levels = np.asarray(cv2.resize(levels, (width, height), interpolation=cv2.INTER_LINEAR))  # (H, W) uint8
    colors = cv2.applyColorMap(levels, _lut(config.colormap, class_index))  # (H, W, 3) uint8 RGB
    # One alpha for every coloured pixel: a uint8 addWeighted plus a masked copy is several times faster than
    # per-pixel float weights.
    mixed = cv2.addWeighted(frame, 1.0 - config.alpha, colors, config.alpha, 0.0)
    if config.threshold <= 0.0:
        return np.asarray(mixed)
    mask = np.asarray(levels >= np.ceil(config.threshold * 255.0 - 1e-6), np.uint8)  # (H, W) 1 where coloured
    out = frame.copy()
    cv2.copyTo(mixed, mask, out)
    return out


def heatmap_rgba(cam: F32, size: tuple[int, int], config: RenderConfig, class_index: int = 0) -> U8:
    """An (H, W, 4) uint8 RGBA overlay (alpha channel last) for a compositor such as picamera2's set_overlay."""
    up = upsample(cam, size)
    alpha = np.asarray(heat_weights(up, config.alpha, config.threshold) * 255.0 + 0.5, np.uint8)  # (H, W) uint8
    return np.asarray(cv2.merge([*cv2.split(colorize(up, config.colormap, class_index)), alpha]))


def _text_scale(image: U8) -> float:
    return max(0.4, min(image.shape[:2]) / 480.0)


def draw_text(image: U8, text: str, origin: tuple[int, int], scale: float | None = None,
              color: tuple[int, int, int] = (255, 255, 255)) -> U8:
    """A copy of image with text on a dark box at origin (x, y of the box's top-left corner)."""
    out = image.copy()
    _text_into(out, text, origin, scale, color)
    return out


def _text_into(out: U8, text: str, origin: tuple[int, int], scale: float | None = None,
               color: tuple[int, int, int] = (255, 255, 255)) -> None:
    scale = scale or _text_scale(out)
    thickness = max(1, round(scale * 2))
    (tw, th), baseline = cv2.getTextSize(text, _FONT, scale, thickness)
    x, y = origin
    pad = max(2, round(4 * scale))
    cv2.rectangle(out, (x, y), (x + tw + 2 * pad, y + th + baseline + 2 * pad), (0, 0, 0), thickness=-1)
    cv2.putText(out, text, (x + pad, y + pad + th), _FONT, scale, color, thickness, cv2.LINE_AA)


def draw_label(image: U8, label: str, confidence: float) -> U8:
    """A copy with "label 97%" in the top-left corner."""
    return draw_text(image, f"{label} {confidence:.0%}", (0, 0))


def draw_top_k(image: U8, entries: Sequence[tuple[str, float]]) -> U8:
    """A copy with a panel of (label, probability) bars in the bottom-left corner, best first."""
    out = image.copy()
    _top_k_into(out, entries)
    return out


def _top_k_into(out: U8, entries: Sequence[tuple[str, float]]) -> None:
    scale = _text_scale(out) * 0.6
    thickness = max(1, round(scale * 2))
    line = round(cv2.getTextSize("Ag", _FONT, scale, thickness)[0][1] * 2.0)
    bar_width = max(20, out.shape[1] // 4)
    top = out.shape[0] - line * len(entries) - 4
    for i, (label, p) in enumerate(entries):
        y = top + i * line
        cv2.rectangle(out, (0, y), (bar_width, y + line - 2), (0, 0, 0), thickness=-1)
        cv2.rectangle(out, (0, y), (round(bar_width * float(np.clip(p, 0, 1))), y + line - 2), (0, 140, 255), -1)
        cv2.putText(out, f"{label} {p:.2f}", (3, y + line - 6), _FONT, scale, (255, 255, 255), thickness, cv2.LINE_AA)


def draw_fps(image: U8, fps: float) -> U8:
    """A copy with the frame rate in the top-right corner."""
    out = image.copy()
    _fps_into(out, fps)
    return out


def _fps_into(out: U8, fps: float) -> None:
    text = f"{fps:.1f} fps"
    scale = _text_scale(out) * 0.6
    (tw, _), _ = cv2.getTextSize(text, _FONT, scale, max(1, round(scale * 2)))
    _text_into(out, text, (max(0, out.shape[1] - tw - 12), 0), scale)


def top_entries(probabilities: F32, class_names: Sequence[str], k: int) -> list[tuple[str, float]]:
    """The k most probable (class name, probability) pairs, best first."""
    order = np.argsort(-np.asarray(probabilities), kind="stable")[:k]
    return [(class_names[i], float(probabilities[i])) for i in order]


def render(frame: U8, explanation: Explanation, config: RenderConfig, *,
           top: Sequence[tuple[str, float]] = (), cam: F32 | None = None, fps: float | None = None) -> U8:
    """The full overlay: the explanation's heatmap, its label and confidence, the top-k panel and the fps.

    cam replaces explanation.cam when given (a smoothed map); the panel is drawn when top has two or more entries.
    """
    out = overlay_heatmap(frame, explanation.cam if cam is None else cam, config, explanation.class_index)
    # out is a new array of our own: the text goes straight into it, without a copy per item.
    if config.show_label:
        confidence = float(explanation.probabilities[explanation.class_index])
        _text_into(out, f"{explanation.label} {confidence:.0%}", (0, 0))
    if config.show_top_k and len(top) > 1:
        _top_k_into(out, top)
    if config.show_fps and fps is not None:
        _fps_into(out, fps)
    return out


class CamSmoother:
    """Exponential moving average of the CAM over frames, so the live view does not flicker.

    The average restarts when the explained class or the map's shape changes: the previous class's map says nothing
    about where the model looks for the new one.
    """

    def __init__(self, weight: float) -> None:
        if not 0.0 <= weight < 1.0:
            raise ValueError(f"smoothing weight must be in [0, 1), got {weight}")
        self.weight = weight
        self._state: F32 | None = None  # (h, w) float32
        self._class: int | None = None

    def update(self, cam: F32, class_index: int) -> F32:
        """The smoothed map for this frame's CAM (a new array; cam is not modified)."""
        if self._state is None or self._class != class_index or self._state.shape != cam.shape or self.weight == 0:
            self._state = np.array(cam, np.float32)
        else:
            self._state = (self.weight * self._state + (1.0 - self.weight) * cam).astype(np.float32)
        self._class = class_index
        return self._state.copy()
