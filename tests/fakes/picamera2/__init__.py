"""A stand-in for picamera2 (raspberrypi/picamera2) with the calls edge uses, for tests on machines without a camera.

It follows the real module where edge touches it:
- Picamera2(camera_num); create_preview_configuration(main=, lores=, display=) with the real defaults (main XBGR8888
  640x480, lores YUV420 at main size) and align_stream(optimal=False) (even sizes);
- configure() with the real checks (lores may not exceed main; on VC4, Pi 4 and earlier, lores must be YUV) and a
  stride per stream, padded for YUV420 as the hardware pads it; stream_configuration();
- start_preview(Preview.X) before start(); start() runs a NULL preview when none was started;
- capture_arrays(names) -> ([arrays], metadata), arrays shaped as request.make_array makes them: packed formats
  (h, w, 3|4) in libcamera byte order ("RGB888" is B, G, R in memory; "XBGR8888" is R, G, B, X), YUV420 as
  (h * 3 / 2, stride) I420 planes;
- set_overlay(rgba) needing a preview and a 4-channel array; close().

Test hooks the real module does not have: PLATFORM ("VC4" or "PISP"), INSTANCES (every camera made), scene() (the
RGB picture every frame shows, so tests know what to expect), and $FAKE_PICAMERA2_JOURNAL (a JSON-lines file of calls,
for tests that run edge in a subprocess).
"""

from __future__ import annotations

import json
import os
from enum import Enum
from typing import Any

import cv2
import numpy as np

PLATFORM = "VC4"
INSTANCES: list[Picamera2] = []
_PAD_BYTE = 0x55  # what the fake puts in row padding, so a reader that forgets to crop it gets wrong colours


class Preview(Enum):
    NULL = "NullPreview"
    DRM = "DrmPreview"
    QT = "QtPreview"
    QTGL = "QtGlPreview"


def scene(height: int, width: int, index: int) -> np.ndarray:
    """The (height, width, 3) uint8 RGB picture of frame index: red left, blue right, a green bar that moves."""
    image = np.zeros((height, width, 3), np.uint8)
    image[:, : width // 2] = (200, 30, 30)
    image[:, width // 2 :] = (30, 30, 200)
    bar = (index * 7) % max(1, height - height // 8)
    image[bar : bar + height // 8] = (30, 200, 30)
    return image


def _journal(event: str, **fields: Any) -> None:
    path = os.environ.get("FAKE_PICAMERA2_JOURNAL")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"event": event, **fields}) + "\n")


def _stride(fmt: str, width: int) -> int:
    if fmt in ("YUV420", "YVU420"):
        return (width + 63) // 64 * 64  # ISP rows are 64-byte aligned: narrow lores streams get padding
    return width * {"RGB888": 3, "BGR888": 3, "XBGR8888": 4, "XRGB8888": 4}[fmt]


def _packed(rgb: np.ndarray, fmt: str) -> np.ndarray:
    bgr = rgb[:, :, ::-1]
    pad = np.full((*rgb.shape[:2], 1), 255, np.uint8)
    arrays = {"RGB888": bgr, "BGR888": rgb, "XBGR8888": np.dstack([rgb, pad]), "XRGB8888": np.dstack([bgr, pad])}
    return np.ascontiguousarray(arrays[fmt])


def _yuv420(rgb: np.ndarray, stride: int) -> np.ndarray:
    """I420 planes with stride-wide rows, shaped (h * 3 / 2, stride) as picamera2 returns YUV420."""
    h, w = rgb.shape[:2]
    i420 = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420).reshape(-1)  # Y (h*w), U (h/2*w/2), V (h/2*w/2)
    y = np.full((h, stride), _PAD_BYTE, np.uint8)
    y[:, :w] = i420[: h * w].reshape(h, w)
    planes = [y.reshape(-1)]
    for k in range(2):
        chroma = np.full((h // 2, stride // 2), _PAD_BYTE, np.uint8)
        start = h * w + k * (h // 2) * (w // 2)
        chroma[:, : w // 2] = i420[start : start + (h // 2) * (w // 2)].reshape(h // 2, w // 2)
        planes.append(chroma.reshape(-1))
    return np.concatenate(planes).reshape(h * 3 // 2, stride)


class Picamera2:
    def __init__(self, camera_num: int = 0, **_kwargs: Any) -> None:
        self.camera_num = camera_num
        self.camera_config: dict[str, Any] | None = None
        self.is_open = True
        self.started = False
        self.preview: Preview | None = None
        self.overlays: list[np.ndarray | None] = []
        self.frames = 0
        self.closed = False
        INSTANCES.append(self)
        _journal("open", camera_num=camera_num)

    def __enter__(self) -> Picamera2:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def align_stream(stream_config: dict[str, Any], optimal: bool = True) -> None:
        width, height = stream_config["size"]
        stream_config["size"] = (width - width % 2, height - height % 2)

    def create_preview_configuration(self, main: dict[str, Any] | None = None, lores: dict[str, Any] | None = None,
                                     display: str | None = "main", buffer_count: int = 4,
                                     **_kwargs: Any) -> dict[str, Any]:
        if not self.is_open:
            raise RuntimeError("Camera not opened")
        main = {"format": "XBGR8888", "size": (640, 480), "preserve_ar": True} | (main or {})
        self.align_stream(main, optimal=False)
        if lores is not None:
            lores = {"format": "YUV420", "size": main["size"], "preserve_ar": False} | lores
            self.align_stream(lores, optimal=False)
        return {"use_case": "preview", "buffer_count": buffer_count, "main": main, "lores": lores, "raw": None,
                "display": display, "controls": {}}

    def configure(self, camera_config: dict[str, Any]) -> None:
        main, lores = camera_config["main"], camera_config.get("lores")
        if lores is not None:
            if lores["size"][0] > main["size"][0] or lores["size"][1] > main["size"][1]:
                raise RuntimeError("lores stream dimensions may not exceed main stream")
            if PLATFORM == "VC4" and lores["format"] not in ("YUV420", "YVU420"):
                raise RuntimeError("lores stream must be YUV")
        for stream in (main, lores):
            if stream is not None:
                stream["stride"] = _stride(stream["format"], stream["size"][0])
        self.camera_config = camera_config
        _journal("configure", main=[main["format"], list(main["size"])],
                 lores=[lores["format"], list(lores["size"]), lores["stride"]] if lores else None)

    def stream_configuration(self, name: str = "main") -> dict[str, Any]:
        assert self.camera_config is not None
        return self.camera_config[name]

    def start_preview(self, preview: Preview | bool | None = None, **_kwargs: Any) -> None:
        if self.started:
            raise RuntimeError("An event loop is already running")
        self.preview = preview if isinstance(preview, Preview) else Preview.NULL
        _journal("start_preview", preview=self.preview.name)

    def start(self, config: dict[str, Any] | None = None, show_preview: bool = False) -> None:
        if config is not None:
            self.configure(config)
        if self.camera_config is None:
            raise RuntimeError("Camera has not been configured")
        if self.preview is None:
            self.preview = Preview.NULL  # as the real start(): a NULL preview drives the camera
        self.started = True
        _journal("start")

    def capture_arrays(self, names: list[str] | None = None) -> tuple[list[np.ndarray], dict[str, Any]]:
        if not self.started or self.camera_config is None:
            raise RuntimeError("Camera must be started before capturing")
        arrays = []
        for name in names or ["main"]:
            stream = self.camera_config[name]
            if stream is None:
                raise RuntimeError(f"Stream {name!r} is not defined")
            width, height = stream["size"]
            rgb = scene(height, width, self.frames)
            if stream["format"] in ("YUV420", "YVU420"):
                arrays.append(_yuv420(rgb, stream["stride"]))
            else:
                arrays.append(_packed(rgb, stream["format"]))
        self.frames += 1
        return arrays, {"SensorTimestamp": self.frames * 33_333_000, "FrameDuration": 33333}

    def set_overlay(self, overlay: np.ndarray | None) -> None:
        if self.preview is None:
            raise RuntimeError("No preview specified.")
        if overlay is not None and (overlay.ndim != 3 or overlay.shape[2] != 4):
            raise RuntimeError("Overlay must be a 4-channel image")
        self.overlays.append(None if overlay is None else overlay.copy())
        _journal("set_overlay", shape=None if overlay is None else list(overlay.shape),
                 alpha_max=None if overlay is None else int(overlay[:, :, 3].max()))

    def stop(self) -> None:
        self.started = False

    def close(self) -> None:
        self.stop()
        self.is_open = False
        self.closed = True
        _journal("close", frames=self.frames)
