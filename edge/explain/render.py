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

from edge.explain.explainer import Explanation

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
    lut = _lut(config.colormap, class_index)
    if config.threshold <= 0.0:
        # One alpha for every pixel: a uint8 addWeighted is several times faster than per-pixel float weights.
        return np.asarray(cv2.addWeighted(frame, 1.0 - config.alpha, cv2.applyColorMap(levels, lut), config.alpha,
                                          0.0))
    # (H, W) uint8, 1 where coloured: levels >= the threshold level, i.e. > one below it (cv2.threshold is strict)
    first_coloured = np.ceil(config.threshold * 255.0 - 1e-6)
    mask = np.asarray(cv2.threshold(levels, first_coloured - 1.0, 1, cv2.THRESH_BINARY)[1])
    out = frame.copy()
    # Colour and blend only the box around the coloured pixels: a fruit's heatmap covers a fraction of the frame,
    # and each pixel's result does not depend on its neighbours, so the box gives the same bytes as the whole frame.
    x, y, w, h = cv2.boundingRect(mask)
    if w == 0 or h == 0:
        return out
    box = np.s_[y:y + h, x:x + w]
    mixed = cv2.addWeighted(frame[box], 1.0 - config.alpha, cv2.applyColorMap(levels[box], lut), config.alpha, 0.0)
    cv2.copyTo(mixed, mask[box], out[box])
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
    x, y = origin
    _paste(out, _text_box(text, scale or _text_scale(out), color), x, y)


@lru_cache(maxsize=512)
def _text_box(text: str, scale: float, color: tuple[int, int, int]) -> U8:
    """The text on its opaque dark box, (h, w, 3) uint8 RGB, drawn once per (text, scale, colour): anti-aliased text
    is the costliest thing on the overlay, and labels, probabilities and frame rates repeat from frame to frame."""
    thickness = max(1, round(scale * 2))
    (tw, th), baseline = cv2.getTextSize(text, _FONT, scale, thickness)
    pad = max(2, round(4 * scale))
    box = np.zeros((th + baseline + 2 * pad + 1, tw + 2 * pad + 1, 3), np.uint8)  # (h, w, 3) uint8 RGB
    cv2.putText(box, text, (pad, pad + th), _FONT, scale, color, thickness, cv2.LINE_AA)
    box.flags.writeable = False  # shared by every frame that shows this text
    return box


def _paste(out: U8, patch: U8, x: int, y: int) -> None:
    """Copy patch into out with its top-left corner at (x, y), clipped to out's bounds."""
    top, left = max(0, -y), max(0, -x)  # rows and columns of the patch above or left of the image
    bottom = min(patch.shape[0], out.shape[0] - y)
    right = min(patch.shape[1], out.shape[1] - x)
    if bottom > top and right > left:
        out[y + top:y + bottom, x + left:x + right] = patch[top:bottom, left:right]


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
        filled = round(bar_width * float(np.clip(p, 0, 1)))
        _paste(out, _bar_row(f"{label} {p:.2f}", filled, bar_width, line, scale), 0, top + i * line)


@lru_cache(maxsize=512)
def _bar_row(text: str, filled: int, bar_width: int, line: int, scale: float) -> U8:
    """One row of the top-k panel, (line - 1, width, 3) uint8 RGB: a dark bar, its filled part, the text on top;
    as wide as the bar or the text, whichever is wider, so the text always sits on the dark bar."""
    thickness = max(1, round(scale * 2))
    width = max(bar_width, cv2.getTextSize(text, _FONT, scale, thickness)[0][0] + 6) + 1
    row = np.zeros((line - 1, width, 3), np.uint8)  # (h, w, 3) uint8 RGB
    cv2.rectangle(row, (0, 0), (filled, line - 2), (0, 140, 255), -1)
    cv2.putText(row, text, (3, line - 6), _FONT, scale, (255, 255, 255), thickness, cv2.LINE_AA)
    row.flags.writeable = False
    return row


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
