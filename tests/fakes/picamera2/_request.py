"""capture_request() and CompletedRequest as picamera2 (request.py, picamera2.py) has them, for the AI Camera path:
make_array(name), get_metadata() (a copy, with ScalerCrop and whatever a sensor hook adds), release() once.

Test hooks: METADATA_HOOKS (callables frame_index -> dict merged into each request's metadata: the IMX500 fake's
tensors), SENSOR_SIZE (the full pixel array ScalerCrop is given in) and RAW_SIZE (the sensor mode's size, the raw
stream's; None: main's size)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

METADATA_HOOKS: list[Callable[[int], dict[str, Any]]] = []
SENSOR_SIZE: tuple[int, int] | None = None  # (width, height); None: the main stream's size
RAW_SIZE: tuple[int, int] | None = None


def scaler_crop(main: tuple[int, int]) -> tuple[int, int, int, int]:
    """The ISP's crop of the full sensor for a main stream of this aspect ratio (preserve_ar), centred."""
    sw, sh = SENSOR_SIZE or main
    mw, mh = main
    if sw * mh > mw * sh:
        w, h = sh * mw // mh, sh
    else:
        w, h = sw, sw * mh // mw
    return ((sw - w) // 2, (sh - h) // 2, w, h)


class CompletedRequest:
    def __init__(self, picam2: Any, arrays: dict[str, np.ndarray], metadata: dict[str, Any]) -> None:
        self.picam2 = picam2
        self.config = picam2.camera_config.copy()
        self._arrays = arrays
        self._metadata = metadata
        self.ref_count = 1

    def make_array(self, name: str) -> np.ndarray:
        if self.ref_count <= 0:
            raise RuntimeError("CompletedRequest: the request was released")  # its buffers went back to the camera
        if name not in self._arrays:
            raise KeyError(name)
        return self._arrays[name].copy()

    def get_metadata(self) -> dict[str, Any]:
        return dict(self._metadata)

    def release(self) -> None:
        self.ref_count -= 1
        if self.ref_count < 0:
            raise RuntimeError("CompletedRequest: lock now has negative ref_count")


class RequestMixin:
    """Picamera2's capture_request() and camera_configuration() (mixed into the fake Picamera2)."""

    camera_config: dict[str, Any]

    def camera_configuration(self) -> dict[str, Any]:
        config = self.camera_config
        if config and config.get("raw") is not None and RAW_SIZE is not None:
            return config | {"raw": config["raw"] | {"size": RAW_SIZE}}
        return config

    def capture_request(self, wait: float | bool | None = None, signal_function: Any = None,
                        flush: Any = None) -> CompletedRequest:
        names = [n for n in ("main", "lores") if self.camera_config.get(n) is not None]
        arrays, metadata = self.capture_arrays(names, wait=wait, signal_function=signal_function)  # type: ignore[attr-defined]
        index = self.frames - 1  # type: ignore[attr-defined]
        metadata = metadata | {"ScalerCrop": scaler_crop(self.camera_config["main"]["size"])}
        for hook in METADATA_HOOKS:
            metadata |= hook(index)
        return CompletedRequest(self, dict(zip(names, arrays, strict=True)), metadata)
