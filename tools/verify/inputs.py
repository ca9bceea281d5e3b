"""The images tools.verify reads and the model inputs its references take, built from the preprocessing spec directly
(not by edge's Preprocessor, which is under test)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge.explain.bundle import Preprocess
from tools.export.keras.feature_export import IMAGE_SUFFIXES
from tools.verify.references import VerifyError


def load_images(directory: Path, limit: int) -> tuple[list[Path], list[np.ndarray]]:
    every = sorted(p for p in directory.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    paths = every[:: max(1, len(every) // limit)][:limit]  # spread over the class folders, not the first one only
    images, kept = [], []
    for path in paths:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is not None:
            images.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))  # (H, W, 3) uint8 RGB
            kept.append(path)
    if not images:
        raise VerifyError(f"{directory}: no readable images")
    return kept, images


def reference_inputs(images: list[np.ndarray], spec: Preprocess, shape: tuple[int, int, int]) -> np.ndarray:
    """(N, h_in, w_in, c) float32 model inputs built from `spec` directly (not by edge's Preprocessor, which is
    under test): resize, channel order, pixel * scale + offset."""
    interpolation = {"bilinear": cv2.INTER_LINEAR, "area": cv2.INTER_AREA, "nearest": cv2.INTER_NEAREST}[spec.resize]
    out = []
    for image in images:
        resized = cv2.resize(image, (shape[1], shape[0]), interpolation=interpolation)
        if spec.channel_order == "BGR":
            resized = resized[..., ::-1]
        x = resized.astype(np.float32) * np.array(spec.scale, np.float32) + np.array(spec.offset, np.float32)
        out.append(x.astype(np.float32))
    return np.stack(out)
