"""JPEG encoding of the RGB images the runtime passes around (OpenCV encodes BGR)."""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray


def encode_rgb(image: NDArray[np.uint8], quality: int) -> bytes | None:
    """(H, W, 3) uint8 RGB -> JPEG bytes, or None if OpenCV could not encode it.

    The channel swap is a cv2.cvtColor into a contiguous array: handing imencode the reversed view image[:, :, ::-1]
    makes OpenCV copy it element by element first, measured 5x slower for a 640x480 frame (4.8 vs 0.86 ms).
    """
    return encode_bgr(np.asarray(cv2.cvtColor(image, cv2.COLOR_RGB2BGR), np.uint8), quality)


def encode_bgr(image: NDArray[np.uint8], quality: int) -> bytes | None:
    """(H, W, 3) uint8 BGR (contiguous) -> JPEG bytes, or None if OpenCV could not encode it."""
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    return data.tobytes() if ok else None
