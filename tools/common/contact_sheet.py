"""Contact sheets: rows of labelled tiles (original | heatmap | overlay ...) saved as one PNG, with OpenCV only."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

U8 = NDArray[np.uint8]


def heatmap_rgb(cam: NDArray[np.float32], size: tuple[int, int]) -> U8:
    """(h, w) map in [0, 1] -> (H, W, 3) uint8 RGB jet image at size (W, H)."""
    up = cv2.resize(cam.astype(np.float32), size, interpolation=cv2.INTER_LINEAR)
    jet_bgr = cv2.applyColorMap(np.clip(up * 255, 0, 255).astype(np.uint8), cv2.COLORMAP_JET)
    return np.asarray(cv2.cvtColor(jet_bgr, cv2.COLOR_BGR2RGB))


def overlay_rgb(image: U8, cam: NDArray[np.float32], alpha: float = 0.4) -> U8:
    """The Keras Grad-CAM example's overlay: jet heatmap blended over the image with weight alpha."""
    heat = heatmap_rgb(cam, (image.shape[1], image.shape[0]))
    return np.asarray(cv2.addWeighted(heat, alpha, image, 1.0 - alpha, 0.0))


def _tile(image: U8, caption: str, size: int) -> U8:
    tile = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    bar = np.full((22, size, 3), 255, np.uint8)
    cv2.putText(bar, caption[:28], (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([tile, bar])


def _title_bar(title: str, width: int, scale: float = 0.6) -> U8:
    """The title in as many lines as the sheet's width needs (a three-tile sheet is 480 px: too narrow for one)."""
    lines: list[str] = []
    for word in title.split(" "):
        line = f"{lines[-1]} {word}" if lines else word
        if lines and cv2.getTextSize(line, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0] <= width - 12:
            lines[-1] = line
        else:
            lines.append(word)
    bar = np.full((8 + 22 * len(lines), width, 3), 255, np.uint8)  # (h, W, 3) uint8 RGB
    for i, line in enumerate(lines):
        cv2.putText(bar, line, (6, 21 + 22 * i), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return bar


def write_sheet(path: Path, rows: list[list[tuple[U8, str]]], tile: int = 160, title: str = "") -> None:
    """Write rows of (RGB image, caption) tiles as a PNG."""
    if not rows:
        raise ValueError("a contact sheet needs at least one row")
    width = max(len(r) for r in rows)
    blank = np.full((tile + 22, tile, 3), 255, np.uint8)
    lines = [np.hstack([_tile(img, cap, tile) for img, cap in row] + [blank] * (width - len(row))) for row in rows]
    sheet = np.vstack(lines)
    if title:
        sheet = np.vstack([_title_bar(title, sheet.shape[1]), sheet])
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)):
        raise OSError(f"{path}: could not write the contact sheet")
