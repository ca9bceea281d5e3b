"""picamera2's arrays -> RGB: the packed formats and planar YUV420/YVU420, as Picamera2.capture_arrays returns them.

Format names follow libcamera/DRM, which name the bytes backwards: "RGB888" is B, G, R in memory and "XBGR8888" is
R, G, B, X. The YUV planes are full range: picamera2's preview configuration asks for colour_space Sycc(), which
libcamera defines as Rec.601 YCbCr with Range::Full (JPEG's convention; picamera2's own converters.YUV420_to_RGB uses
that matrix too). OpenCV's COLOR_YUV2RGB_I420 assumes limited range (Y 16-235) and would stretch contrast by 1.16x.
"""

from __future__ import annotations

import cv2
import numpy as np

from edge.records import U8
from edge.sources.base import AnyArray

# Memory order of each packed format's first three bytes, and how to reach RGB from there.
_MEMORY_ORDER = {"XBGR8888": "RGB", "XRGB8888": "BGR", "RGB888": "BGR", "BGR888": "RGB"}
YUV_FORMATS = ("YUV420", "YVU420")  # Y plane, then Cb then Cr (YUV420) or Cr then Cb (YVU420)


def packed_to_rgb(array: AnyArray, fmt: str) -> U8:
    """A packed (H, W, 3 or 4) picamera2 array -> (H, W, 3) uint8 RGB."""
    rgb = array[:, :, :3]
    if _MEMORY_ORDER[fmt] == "BGR":
        rgb = rgb[:, :, ::-1]
    return np.ascontiguousarray(rgb)


def yuv420_to_rgb(array: AnyArray, width: int, fmt: str = "YUV420") -> U8:
    """A YUV420/YVU420 array as picamera2 returns it, (h * 3 / 2, stride) uint8, -> (h, width, 3) uint8 RGB.

    Rows are stride bytes wide (padding on the right); each chroma plane follows the Y plane with rows stride / 2
    wide. The decode is full-range Rec.601 (OpenCV's YCrCb conversion is exactly that matrix), chroma repeated 2x2.
    """
    if fmt not in YUV_FORMATS:
        raise ValueError(f"not a planar YUV format: {fmt!r}")
    rows, stride = array.shape
    height = rows * 2 // 3
    half_w, half_h = (width + 1) // 2, height // 2
    plane = half_h * (stride // 2)
    chroma = np.ascontiguousarray(array[height:]).reshape(-1)
    first = chroma[:plane].reshape(half_h, stride // 2)[:, :half_w]  # (h/2, w/2) uint8
    second = chroma[plane : 2 * plane].reshape(half_h, stride // 2)[:, :half_w]
    cb, cr = (first, second) if fmt == "YUV420" else (second, first)
    size = (half_w * 2, half_h * 2)
    ycrcb = cv2.merge([np.ascontiguousarray(array[:height, :width]),
                       cv2.resize(cr, size, interpolation=cv2.INTER_NEAREST)[:, :width],
                       cv2.resize(cb, size, interpolation=cv2.INTER_NEAREST)[:, :width]])  # (h, width, 3) uint8
    return np.asarray(cv2.cvtColor(ycrcb, cv2.COLOR_YCrCb2RGB), np.uint8)
