"""picamera2: the Raspberry Pi camera through Picamera2 (installed from apt as python3-picamera2, imported lazily).

Two streams from one capture: "main" at display size for the preview, the overlay and the log, and "lores" sized to
the model input so inference needs no large resize. Pi 4 and earlier can only give lores as YUV420 (converted here
with OpenCV). Format names follow libcamera/DRM, which name the bytes backwards: "RGB888" is B, G, R in memory and
"XBGR8888" is R, G, B, X.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import cv2
import numpy as np

from edge.sources.base import U8, AnyArray, Frame, SourceBase, SourceConfig, SourceError

_LOGGER = logging.getLogger(__name__)

PREVIEWS = ("null", "drm", "qtgl", "qt")
# Memory order of each packed format's first three bytes, and how to reach RGB from there.
_MEMORY_ORDER = {"XBGR8888": "RGB", "XRGB8888": "BGR", "RGB888": "BGR", "BGR888": "RGB"}


def packed_to_rgb(array: AnyArray, fmt: str) -> U8:
    """A packed (H, W, 3 or 4) picamera2 array -> (H, W, 3) uint8 RGB."""
    rgb = array[:, :, :3]
    if _MEMORY_ORDER[fmt] == "BGR":
        rgb = rgb[:, :, ::-1]
    return np.ascontiguousarray(rgb)


def yuv420_to_rgb(array: AnyArray, width: int) -> U8:
    """A YUV420 array as picamera2 returns it, (h * 3 / 2, stride) uint8, -> (h, width, 3) uint8 RGB.

    The rows are stride bytes wide (padding on the right); converting the whole buffer as an I420 image of width
    stride keeps the chroma planes aligned, and the padding columns are cut off afterwards.
    """
    # Y, then U (Cb), then V (Cr): I420. OpenCV's COLOR_YUV420p2RGB means YV12 (V first) and would swap the chroma.
    rgb = cv2.cvtColor(np.ascontiguousarray(array), cv2.COLOR_YUV2RGB_I420)  # (h, stride, 3) uint8
    return np.ascontiguousarray(rgb[:, :width])


class Picamera2Source(SourceBase):
    """The Pi camera; preview is None (no window) or one of PREVIEWS, started before the camera."""

    live = True

    def __init__(self, config: SourceConfig | None = None, *, model_size: tuple[int, int] | None = None,
                 preview: str | None = None) -> None:
        self.config = config or SourceConfig()
        self.name = "picamera2"
        self.model_size = model_size  # (width, height) of the model input; None: no lores stream
        if preview is not None and preview not in PREVIEWS:
            raise SourceError(f"unknown picamera2 preview {preview!r}; choose one of {', '.join(PREVIEWS)}")
        self.preview = preview
        self.camera: Any = None  # picamera2.Picamera2 once open
        self._lores: dict[str, Any] | None = None
        self._index = 0

    def open(self) -> None:
        try:
            import picamera2  # only this source needs it, and only on a Pi
        except ImportError as e:
            raise SourceError(
                f"picamera2 is not importable ({e}); on a Pi: sudo apt install python3-picamera2 and create the venv "
                "with python3 -m venv --system-site-packages; elsewhere choose --source camera:0"
            ) from e
        try:
            self.camera = picamera2.Picamera2(self.config.camera_num)
            self.camera.configure(self.camera.create_preview_configuration(**self._streams(), display="main"))
            if self.model_size is not None:
                self._lores = dict(self.camera.stream_configuration("lores"))
            if self.preview is not None:
                self.camera.start_preview(getattr(picamera2.Preview, self.preview.upper()))
            self.camera.start()
        except (RuntimeError, OSError, IndexError) as e:
            self.close()
            raise SourceError(f"picamera2: cannot start camera {self.config.camera_num}: {e}") from e
        _LOGGER.info("picamera2: main %s, lores %s", self.camera.stream_configuration("main")["size"],
                     self._lores["size"] if self._lores else None)

    def _streams(self) -> dict[str, dict[str, Any]]:
        streams = {"main": {"size": (self.config.width, self.config.height), "format": self.config.main_format}}
        if self.model_size is not None:
            # lores may not exceed main; YUV420 needs even sizes (picamera2 aligns them further).
            width = min(self.model_size[0], self.config.width) // 2 * 2
            height = min(self.model_size[1], self.config.height) // 2 * 2
            streams["lores"] = {"size": (max(width, 2), max(height, 2)), "format": self.config.lores_format}
        return streams

    def read(self) -> Frame | None:
        if self.camera is None:
            raise SourceError("picamera2: read before open")
        names = ["main", "lores"] if self._lores is not None else ["main"]
        try:
            arrays, _metadata = self.camera.capture_arrays(names)
        except (RuntimeError, TimeoutError) as e:
            raise SourceError(f"picamera2: capture failed: {e}") from e
        image = packed_to_rgb(arrays[0], self.config.main_format)
        lores = self._lores_rgb(arrays[1]) if self._lores is not None else None
        frame = Frame(image=image, index=self._index, timestamp=time.time(), lores=lores)
        self._index += 1
        return frame

    def _lores_rgb(self, array: AnyArray) -> U8:
        assert self._lores is not None
        if self._lores["format"] in ("YUV420", "YVU420"):
            return yuv420_to_rgb(array, self._lores["size"][0])
        return packed_to_rgb(array, self._lores["format"])

    def set_overlay(self, overlay: U8 | None) -> None:
        """Hand an (h, w, 4) uint8 RGBA overlay to picamera2's preview, which scales and composites it."""
        if self.camera is not None:
            self.camera.set_overlay(overlay)

    def close(self) -> None:
        camera, self.camera = self.camera, None
        if camera is not None:
            try:
                camera.close()
            except RuntimeError as e:
                _LOGGER.warning("picamera2: close failed: %s", e)
