"""A stand-in for picamera2 (raspberrypi/picamera2 0.3.36) with the calls edge uses, strict where the real one is.

Read against picamera2.py, request.py, job.py, previews/{null,drm,qt}_preview*.py and libcamera's color_space.cpp:
- Picamera2(camera_num=0, verbose_console=None, tuning=None, allocator=None), nothing else: IndexError with no camera
  at that index (global_camera_info() is empty), RuntimeError("Camera __init__ sequence did not complete.") when the
  camera is already acquired (busy) until its holder is closed;
- create_preview_configuration() with the real parameters and defaults (main XBGR8888 640x480, lores YUV420 at main
  size, colour_space Sycc(), buffer_count 4); a bad stream key is ValueError("Bad key ..."); align_stream(optimal=
  False);
- configure() with check_camera_config's checks (format names, (w, h) tuples, even sizes, lores <= main, YUV-only
  lores on VC4) and a stride per stream, padded for YUV420 as the ISP pads it; "must be stopped before configuring";
- start_preview(): True/False/None/Preview like the real one, RuntimeError("An event loop is already running") for a
  second one (start() runs a NULL preview when none was started); preview kwargs as the preview classes accept them;
- capture_arrays(names, wait=None): waits like dispatch_functions: forever with wait None/True, TimeoutError after a
  number of seconds; a job stays queued until cancel_all_and_flush() (which cancels it: CancelledError for a waiter);
  frames never complete on a stopped camera, with HANG, or once the preview thread died;
- the DRM preview needs a connected display (kms++ reserves a connector): without one start_preview() passes and the
  preview thread dies at the first frame ("Failed to reserve DRM plane"), so no capture completes again; its
  set_overlay() raises "Overlays not supported on this device" until the first frame reserved an overlay plane, and
  always where the display has none (DRM_OVERLAY_PLANE False, picamera2 issue #995); each call builds a framebuffer
  (a copy of the overlay) and commits synchronously;
- the YUV planes are full range (Sycc), arrays shaped as request.make_array makes them (see _pixels);
- stop_preview() without a preview is "No preview specified."; close() stops the preview first and, when that fails
  (STOP_PREVIEW_FAILS), raises "Unable to stop preview." with the camera still acquired.

Test hooks the real module does not have: PLATFORM ("VC4" or "PISP"), CAMERAS, DRM_ROOT (the sysfs view kms++
would see), DRM_OVERLAY_PLANE, HANG, STOP_PREVIEW_FAILS, INSTANCES (every camera made), scene() (the RGB picture
every frame shows), and $FAKE_PICAMERA2_JOURNAL (a JSON-lines file of calls, for tests that run edge in a subprocess).
"""

from __future__ import annotations

import concurrent.futures
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from ._journal import journal as _journal
from ._pixels import ColorSpace, packed, scene, stride_of, yuv420
from ._preview import Preview, _Preview
from ._request import CompletedRequest, RequestMixin

__all__ = ["ColorSpace", "CompletedRequest", "Picamera2", "Preview", "scene"]

PLATFORM = "VC4"
CAMERAS = 1  # cameras attached; Picamera2(n) for n >= CAMERAS raises IndexError
DRM_ROOT = Path("/sys/class/drm")  # a connector whose status is "connected" is a display kms++ can drive
DRM_OVERLAY_PLANE = True  # False: a display without a spare plane for overlays (Pi 5 composite output)
HANG = False  # True: no request completes (cable out, camera wedged)
STOP_PREVIEW_FAILS = False
INSTANCES: list[Picamera2] = []
_ACQUIRED: set[int] = set()
_YUV = ("YUV420", "YVU420", "NV12", "NV21", "YUYV", "YVYU", "UYVY", "VYUY")
_RGB = ("BGR888", "RGB888", "XBGR8888", "XRGB8888", "RGB161616", "BGR161616")


def _display_connected() -> bool:
    return any(p.read_text().strip() == "connected" for p in DRM_ROOT.glob("*/status"))


class Picamera2(RequestMixin):
    def __init__(self, camera_num: int = 0, verbose_console: int | None = None, tuning: Any = None,
                 allocator: Any = None) -> None:
        self._preview: _Preview | None = None
        self.is_open = False
        list(range(CAMERAS))[camera_num]  # global_camera_info()[camera_num]: IndexError with no such camera
        if camera_num in _ACQUIRED:
            raise RuntimeError("Camera __init__ sequence did not complete.") from RuntimeError(
                "Failed to acquire camera: Device or resource busy")
        _ACQUIRED.add(camera_num)
        self.camera_num = camera_num
        self.camera_config: dict[str, Any] = {}
        self.is_open = True
        self.started = False
        self.overlays: list[np.ndarray | None] = []
        self.frames = 0
        self.pending_jobs = 0
        self._cancelled = threading.Event()
        INSTANCES.append(self)
        _journal("open", camera_num=camera_num)

    def __enter__(self) -> Picamera2:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return not self.is_open

    @property
    def preview(self) -> Preview | None:
        return None if self._preview is None else self._preview.kind

    @staticmethod
    def align_stream(stream_config: dict[str, Any], optimal: bool = True) -> None:
        width, height = stream_config["size"]
        stream_config["size"] = (width - width % 2, height - height % 2)  # optimal=False: align 2

    @staticmethod
    def _stream(defaults: dict[str, Any], updates: dict[str, Any] | None) -> dict[str, Any] | None:
        if updates is None:
            return None
        valid = ("format", "size", "stride", "preserve_ar")
        for key, value in updates.items():
            if key not in valid:
                raise ValueError(f"Bad key {key!r}: valid stream configuration keys are {valid}")
            defaults[key] = value
        return defaults

    def create_preview_configuration(self, main: dict[str, Any] | None = None, lores: dict[str, Any] | None = None,
                                     raw: dict[str, Any] | None = {}, transform: Any = None,  # noqa: B006
                                     colour_space: ColorSpace | None = None, buffer_count: int = 4,
                                     controls: dict[str, Any] | None = None, display: str | None = "main",
                                     encode: str | None = "main", queue: bool = True, sensor: Any = None,
                                     use_case: str = "preview") -> dict[str, Any]:
        if not self.is_open:
            raise RuntimeError("Camera not opened")
        main_config = self._stream({"format": "XBGR8888", "size": (640, 480), "preserve_ar": True}, main or {})
        assert main_config is not None
        self.align_stream(main_config, optimal=False)
        lores_config = self._stream({"format": "YUV420", "size": main_config["size"], "preserve_ar": False}, lores)
        if lores_config is not None:
            self.align_stream(lores_config, optimal=False)
        config = {"use_case": use_case, "transform": transform, "colour_space": colour_space or ColorSpace.Sycc(),
                  "buffer_count": buffer_count, "queue": queue, "main": main_config, "lores": lores_config,
                  "raw": None if raw is None else {"format": "SBGGR10_CSI2P", "size": main_config["size"]} | raw,
                  "controls": controls or {}, "sensor": sensor}
        for role, name in (("Display", display), ("Encode", encode)):
            if name is not None and config.get(name) is None:
                raise RuntimeError(f"{role} stream {name} was not defined")
        return config | {"display": display, "encode": encode}

    @staticmethod
    def _check_stream(stream: Any, name: str) -> None:
        if type(stream) is not dict:
            raise RuntimeError(name + " stream should be a dictionary")
        fmt, size = stream.get("format"), stream.get("size")
        if not isinstance(fmt, str) or fmt not in _YUV + _RGB:
            raise RuntimeError(f"Bad format {fmt} in stream {name}")
        if type(size) is not tuple or len(size) != 2:
            raise RuntimeError("size in " + name + " stream should be (width, height)")
        if size[0] % 2 or size[1] % 2:
            raise RuntimeError("width and height should be even")

    def configure(self, camera_config: dict[str, Any]) -> None:
        if self.started:
            raise RuntimeError("Camera must be stopped before configuring")
        main, lores = camera_config["main"], camera_config["lores"]
        self._check_stream(main, "main")
        if lores is not None:
            self._check_stream(lores, "lores")
            if lores["size"][0] > main["size"][0] or lores["size"][1] > main["size"][1]:
                raise RuntimeError("lores stream dimensions may not exceed main stream")
            if PLATFORM == "VC4" and lores["format"] not in _YUV:
                raise RuntimeError("lores stream must be YUV")
        for stream in (main, lores):
            if stream is not None:
                stream["stride"] = stride_of(stream["format"], stream["size"][0])
        self.camera_config = camera_config
        _journal("configure", main=[main["format"], list(main["size"])],
                 lores=[lores["format"], list(lores["size"]), lores["stride"]] if lores else None)

    def stream_configuration(self, name: str = "main") -> dict[str, Any]:
        return self.camera_config[name]  # type: ignore[no-any-return]

    def start_preview(self, preview: Preview | bool | None = None, **kwargs: Any) -> None:
        if self._preview is not None:
            raise RuntimeError("An event loop is already running")
        if preview is True:  # picamera2's own "autodetection"
            display = os.environ.get("DISPLAY")
            preview = Preview.DRM if display is None else Preview.QTGL if display.startswith(":") else Preview.QT
        elif preview is False or preview is None:
            preview = Preview.NULL
        self._preview = _Preview(preview, **kwargs)
        _journal("start_preview", preview=preview.name)

    def stop_preview(self) -> None:
        if self._preview is None:
            raise RuntimeError("No preview specified.")
        if STOP_PREVIEW_FAILS:
            raise RuntimeError("Unable to stop preview.")
        self._preview = None

    def start(self, config: dict[str, Any] | None = None, show_preview: bool | None = False) -> None:
        if config is not None:
            self.configure(config)
        if not self.camera_config:
            raise RuntimeError("Camera has not been configured")
        if show_preview is not None and self._preview is None:
            self.start_preview(show_preview)
        self.started = True
        _journal("start")

    def _frames_flow(self) -> bool:
        return self.started and not HANG and self._preview is not None and self._preview.alive

    def capture_arrays(self, names: list[str] | None = None, wait: float | bool | None = None,
                       signal_function: Any = None) -> tuple[list[np.ndarray], dict[str, Any]]:
        if wait is False or signal_function is not None:
            raise NotImplementedError("the fake has no asynchronous jobs")
        if self._frames_flow():
            result = self._make_arrays(names or ["main"])  # a RuntimeError here is the job's, raised to the caller
            assert self._preview is not None
            # the display renders before the job signals: a dying preview never signals
            self._preview.render(_display_connected, DRM_OVERLAY_PLANE)
            if self._preview.alive:
                self.frames += 1
                return result
        self.pending_jobs += 1  # the job stays queued; the waiter waits for a frame that will not come
        if self._cancelled.wait(None if wait is None or wait is True else float(wait)):
            raise concurrent.futures.CancelledError()
        raise TimeoutError()

    def _make_arrays(self, names: list[str]) -> tuple[list[np.ndarray], dict[str, Any]]:
        arrays = []
        for name in names:
            stream = self.camera_config.get(name)
            if stream is None:
                raise RuntimeError(f"Stream {name!r} is not defined")
            width, height = stream["size"]
            rgb = scene(height, width, self.frames)
            if stream["format"] in ("YUV420", "YVU420"):
                full = self.camera_config["colour_space"].full_range
                arrays.append(yuv420(rgb, stream["stride"], stream["format"], full))
            else:
                arrays.append(packed(rgb, stream["format"]))
        return arrays, {"SensorTimestamp": (self.frames + 1) * 33_333_000, "FrameDuration": 33333}

    def cancel_all_and_flush(self) -> None:
        self.pending_jobs = 0
        self._cancelled.set()
        self._cancelled = threading.Event()
        _journal("cancel_all_and_flush")

    def set_overlay(self, overlay: np.ndarray | None) -> None:
        if self._preview is None:
            raise RuntimeError("No preview specified.")
        if overlay is not None and (overlay.ndim != 3 or overlay.shape[2] != 4):
            raise RuntimeError("Overlay must be a 4-channel image")
        if self._preview.kind is Preview.NULL:
            return  # NullPreview.set_overlay does nothing
        if self._preview.kind is Preview.DRM:
            if self.camera_config["buffer_count"] < 2:
                raise RuntimeError("Need at least buffer_count=2 to set overlay")
            if not self._preview.overlay_plane:
                raise RuntimeError("Overlays not supported on this device")
        copy = None if overlay is None else np.ascontiguousarray(overlay).copy()  # the framebuffer it builds
        self.overlays.append(copy)
        _journal("set_overlay", shape=None if overlay is None else list(overlay.shape),
                 alpha_max=None if overlay is None else int(overlay[:, :, 3].max()))

    def stop(self) -> None:
        self.started = False

    def close(self) -> None:
        if self._preview is not None:
            self.stop_preview()  # "Unable to stop preview." leaves the camera acquired
        if not self.is_open:
            return
        self.stop()
        _ACQUIRED.discard(self.camera_num)
        self.is_open = False
        _journal("close", frames=self.frames, pending_jobs=self.pending_jobs)
