"""Camera frame -> model input, as the manifest says: resize, channel order, x = pixel * scale + offset."""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from edge.bundle import Preprocess
from edge.errors import InputError
from edge.head_ops import F32

_INTERPOLATION = {"bilinear": cv2.INTER_LINEAR, "area": cv2.INTER_AREA, "nearest": cv2.INTER_NEAREST}


class Preprocessor:
    """Turns (H, W, 3) uint8 RGB frames into (h_in, w_in, c) float32 model inputs; constants prepared once."""

    def __init__(self, spec: Preprocess, input_shape: tuple[int, int, int]) -> None:
        self.height, self.width, self.channels = input_shape
        self._bgr = spec.channel_order == "BGR"
        self._interpolation = _INTERPOLATION[spec.resize]
        self._scale = np.asarray(spec.scale, np.float32)  # (c,)
        self._offset = np.asarray(spec.offset, np.float32)  # (c,)

    def __call__(self, frame: NDArray[np.uint8]) -> F32:
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8 or min(frame.shape[:2]) == 0:
            raise InputError(f"expected an (H, W, 3) uint8 RGB frame, got shape {frame.shape} dtype {frame.dtype}")
        resized: NDArray[np.uint8] = frame
        if frame.shape[:2] != (self.height, self.width):
            resized = np.asarray(cv2.resize(frame, (self.width, self.height), interpolation=self._interpolation))
        if self._bgr:
            resized = resized[:, :, ::-1]
        # x: (h_in, w_in, c) float32
        x = resized.astype(np.float32)
        x *= self._scale
        x += self._offset
        return x
