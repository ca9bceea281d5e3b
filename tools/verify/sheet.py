"""tools.verify's contact sheet: each checked image beside the edge side's heatmap and overlay."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tools.common import contact_sheet


def sheet_rows(paths: list[Path], images: list[np.ndarray], probabilities: np.ndarray, cams: np.ndarray,
               classes: list[str], method: str) -> list[list[tuple[np.ndarray, str]]]:
    """The contact sheet, a row per image: the image captioned with its file name, the edge side's heatmap with the
    method's name, the overlay with the edge side's top-1 class and its probability."""
    rows = []
    for p, image, probs, cam in zip(paths, images, probabilities, cams, strict=True):
        c = int(np.argmax(probs))
        heat = contact_sheet.heatmap_rgb(cam, (image.shape[1], image.shape[0]))  # (H, W, 3) uint8: the image's size
        rows.append([(image, p.name), (heat, method),
                     (contact_sheet.overlay_rgb(image, cam), f"{classes[c]} {probs[c]:.2f}")])
    return rows


def sheet_title(method: str) -> str:
    return f"original | {method} heatmap | overlay (edge, score=logit)"
