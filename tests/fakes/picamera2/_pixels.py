"""What the fake camera's buffers hold: a known scene, encoded as libcamera/picamera2 lay each format out in memory."""

from __future__ import annotations

import numpy as np

PAD_BYTE = 0x55  # what the fake puts in row padding, so a reader that forgets to crop it gets wrong colours
PACKED_BYTES = {"RGB888": 3, "BGR888": 3, "XBGR8888": 4, "XRGB8888": 4}


class ColorSpace:
    """libcamera.ColorSpace's presets that matter here: Sycc (picamera2's preview default) is full range."""

    def __init__(self, name: str, full_range: bool) -> None:
        self.name = name
        self.full_range = full_range

    def __repr__(self) -> str:
        return f"<libcamera.ColorSpace '{self.name}'>"

    @staticmethod
    def Sycc() -> ColorSpace:  # noqa: N802 (libcamera's name)
        return ColorSpace("sYCC", True)  # Rec.601 YCbCr encoding, Range::Full (libcamera color_space.cpp)

    @staticmethod
    def Smpte170m() -> ColorSpace:  # noqa: N802
        return ColorSpace("SMPTE170M", False)  # Rec.601, Range::Limited


def scene(height: int, width: int, index: int) -> np.ndarray:
    """The (height, width, 3) uint8 RGB picture of frame index: red left, blue right, a green bar that moves."""
    image = np.zeros((height, width, 3), np.uint8)
    image[:, : width // 2] = (200, 30, 30)
    image[:, width // 2 :] = (30, 30, 200)
    bar = (index * 7) % max(1, height - height // 8)
    image[bar : bar + height // 8] = (30, 200, 30)
    return image


def stride_of(fmt: str, width: int) -> int:
    if fmt in ("YUV420", "YVU420"):
        return (width + 63) // 64 * 64  # ISP rows are 64-byte aligned: narrow lores streams get padding
    return width * PACKED_BYTES[fmt]


def packed(rgb: np.ndarray, fmt: str) -> np.ndarray:
    """(h, w, 3|4) in libcamera byte order: "RGB888" is B, G, R in memory, "XBGR8888" is R, G, B, X."""
    bgr = rgb[:, :, ::-1]
    pad = np.full((*rgb.shape[:2], 1), 255, np.uint8)
    arrays = {"RGB888": bgr, "BGR888": rgb, "XBGR8888": np.dstack([rgb, pad]), "XRGB8888": np.dstack([bgr, pad])}
    return np.ascontiguousarray(arrays[fmt])


def rgb_to_ycbcr(rgb: np.ndarray, full_range: bool) -> np.ndarray:
    """(h, w, 3) uint8 RGB -> (h, w, 3) float64 Y, Cb, Cr by the Rec.601 equations, written out (no OpenCV), so the
    fake does not share a conversion with the code it tests."""
    r, g, b = (rgb[:, :, i].astype(np.float64) for i in range(3))
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = (b - y) / 1.772
    cr = (r - y) / 1.402
    if full_range:  # Y 0-255, Cb/Cr 128 +- 127.5
        return np.dstack([y, 128 + cb, 128 + cr])
    return np.dstack([16 + y * 219 / 255, 128 + cb * 224 / 255, 128 + cr * 224 / 255])


def yuv420(rgb: np.ndarray, stride: int, fmt: str, full_range: bool) -> np.ndarray:
    """Planar YUV420 (Y, Cb, Cr) or YVU420 (Y, Cr, Cb) with stride-wide rows (chroma rows stride / 2), shaped
    (h * 3 / 2, stride) as picamera2's make_array returns it. Chroma is the mean of each 2x2 block, as a scaler
    that subsamples by averaging gives."""
    h, w = rgb.shape[:2]
    ycc = rgb_to_ycbcr(rgb, full_range)
    chroma = ycc[:, :, 1:].reshape(h // 2, 2, w // 2, 2, 2).mean(axis=(1, 3))  # (h/2, w/2, 2) Cb, Cr
    y = np.full((h, stride), PAD_BYTE, np.uint8)
    y[:, :w] = np.clip(np.rint(ycc[:, :, 0]), 0, 255)
    planes = [y.reshape(-1)]
    for k in (0, 1) if fmt == "YUV420" else (1, 0):
        plane = np.full((h // 2, stride // 2), PAD_BYTE, np.uint8)
        plane[:, : w // 2] = np.clip(np.rint(chroma[:, :, k]), 0, 255)
        planes.append(plane.reshape(-1))
    return np.concatenate(planes).reshape(h * 3 // 2, stride)
