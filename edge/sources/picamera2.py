"""picamera2: the Raspberry Pi camera through Picamera2 (installed from apt as python3-picamera2, imported lazily).

Two streams from one capture: "main" at display size for the preview, the overlay and the log, and "lores" sized to
the model input so inference needs no large resize. Pi 4 and earlier can only give lores as YUV420 (decoded here as
the full-range YCbCr it is, see picamera2_frames).

Failures follow picamera2's own: no camera is an IndexError from Picamera2(), a busy one a RuntimeError (both
SourceUnavailableError: worth waiting for); a capture that never completes (cable out, a preview thread that died) is
bounded by capture_timeout_s, then cancel_all_and_flush() (its docstring names this case) before the camera is
closed and reopened. A preview that fails is dropped, never the camera: the next open runs without it.
"""

from __future__ import annotations

import concurrent.futures
import logging
import time
from typing import Any

from edge.records import U8, Frame
from edge.sources.base import AnyArray, SourceBase, SourceConfig, SourceError, SourceUnavailableError, check_pixels
from edge.sources.picamera2_frames import YUV_FORMATS, packed_to_rgb, yuv420_to_rgb
from edge.sources.picamera2_preview import PREVIEWS, choose_preview

_LOGGER = logging.getLogger(__name__)

__all__ = ["PREVIEWS", "Picamera2Source", "packed_to_rgb", "yuv420_to_rgb"]


class Picamera2Source(SourceBase):
    """The Pi camera; preview is None (no window) or one of PREVIEWS ("auto" decides at each open)."""

    live = True

    def __init__(self, config: SourceConfig | None = None, *, model_size: tuple[int, int] | None = None,
                 preview: str | None = None) -> None:
        self.config = config or SourceConfig()
        self.name = "picamera2"
        self.model_size = model_size  # (width, height) of the model input; None: no lores stream
        if preview is not None and preview not in PREVIEWS:
            raise SourceError(f"unknown picamera2 preview {preview!r}; choose one of {', '.join(PREVIEWS)}")
        self.preview = preview  # what was asked for
        self.active_preview: str | None = None  # what runs now: "drm", "qtgl", "qt" or None
        self.preview_failed = False  # a preview broke the camera once: run without one from then on
        self.camera: Any = None  # picamera2.Picamera2 once open
        self._lores: dict[str, Any] | None = None
        self._index = 0
        self._frames_since_start = 0

    @property
    def wants_overlay(self) -> bool:
        """Whether a preview runs that would show an overlay."""
        return self.camera is not None and self.active_preview is not None

    def check(self) -> None:
        """What open() needs before it touches the camera (--check-config): the size, the picamera2 library."""
        check_pixels(self.config.width, self.config.height, self.config, "picamera2 main stream (--size)")
        _import_picamera2()

    def open(self) -> None:
        check_pixels(self.config.width, self.config.height, self.config, "picamera2 main stream (--size)")
        picamera2 = _import_picamera2()
        try:
            self.camera = picamera2.Picamera2(self.config.camera_num)
        except IndexError as e:  # global_camera_info() is empty: nothing on the CSI port (yet)
            raise SourceUnavailableError(f"picamera2: no camera {self.config.camera_num} found") from e
        except RuntimeError as e:  # acquire() failed: held by another program, or not ready
            raise SourceUnavailableError(f"picamera2: camera {self.config.camera_num} cannot be opened, busy or not "
                                    f"ready ({e.__cause__ or e})") from e
        try:
            self.camera.configure(self.camera.create_preview_configuration(**self._streams(), display="main"))
            if self.model_size is not None:
                self._lores = dict(self.camera.stream_configuration("lores"))
            self._start_preview(picamera2.Preview)
            self.camera.start()
        except (RuntimeError, ValueError, OSError) as e:
            self.close()
            raise SourceError(f"picamera2: cannot start camera {self.config.camera_num}: {e}") from e
        self._frames_since_start = 0
        _LOGGER.info("picamera2: main %s, lores %s, preview %s", self.camera.stream_configuration("main")["size"],
                     self._lores["size"] if self._lores else None, self.active_preview or "none")

    def _start_preview(self, kinds: Any) -> None:
        self.active_preview = None
        if self.preview is None:
            return
        if self.preview_failed:
            return
        kind, why = choose_preview(self.preview)
        if kind is None:
            _LOGGER.info("picamera2: no preview: %s", why)
            return
        try:
            self.camera.start_preview(getattr(kinds, kind.upper()))
        except Exception as e:  # (Qt, kms++ or the preview class: any failure means no preview)
            self.preview_failed = True
            _LOGGER.warning("picamera2: the %s preview failed to start (%s); running without a preview", kind, e)
            return
        self.active_preview = kind
        _LOGGER.info("picamera2: %s preview (%s)", kind, why)

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
        timeout = self.config.capture_timeout_s
        try:
            arrays, _metadata = self.camera.capture_arrays(names, wait=timeout)
        except TimeoutError as e:
            self._flush()
            blame = self._blame_preview()
            raise SourceUnavailableError(f"picamera2: no frame within {timeout:g} s{blame}") from e
        except (RuntimeError, concurrent.futures.CancelledError) as e:
            raise SourceError(f"picamera2: capture failed: {e or type(e).__name__}") from e
        self._frames_since_start += 1
        image = packed_to_rgb(arrays[0], self.config.main_format)
        lores = self._lores_rgb(arrays[1]) if self._lores is not None else None
        frame = Frame(image=image, index=self._index, timestamp=time.time(), lores=lores)
        self._index += 1
        return frame

    def _flush(self) -> None:
        """Cancel the capture job left in picamera2's queue, so the camera can be closed and reopened."""
        try:
            self.camera.cancel_all_and_flush()
        except Exception as e:  # (tidying up a camera already in trouble; the reopen follows)
            _LOGGER.debug("picamera2: cancel_all_and_flush: %s", e)

    def _blame_preview(self) -> str:
        """A preview that never let a frame through (DRM without a usable display) is dropped for the reopen."""
        if self.active_preview is None or self._frames_since_start:
            return ""
        self.preview_failed = True
        _LOGGER.warning("picamera2: no frame ever came through the %s preview; reopening without a preview",
                        self.active_preview)
        return f" with the {self.active_preview} preview (dropped for the next try)"

    def _lores_rgb(self, array: AnyArray) -> U8:
        assert self._lores is not None
        if self._lores["format"] in YUV_FORMATS:
            return yuv420_to_rgb(array, self._lores["size"][0], self._lores["format"])
        return packed_to_rgb(array, self._lores["format"])

    def set_overlay(self, overlay: U8 | None) -> None:
        """Hand an (h, w, 4) uint8 RGBA overlay to picamera2's preview, which scales and composites it.

        Does nothing without a running preview; picamera2's errors (RuntimeError) reach the caller. Called from the
        loop's thread while the capture thread may be reopening the camera: a camera closed meanwhile is no error.
        """
        camera = self.camera
        if camera is None or self.active_preview is None:
            return
        try:
            camera.set_overlay(overlay)
        except RuntimeError:
            if camera is self.camera:
                raise  # the preview refused it

    def close(self) -> None:
        camera, self.camera = self.camera, None
        self.active_preview = None
        if camera is not None:
            try:
                camera.close()
            except RuntimeError as e:  # e.g. "Unable to stop preview.": the camera may stay busy until we exit
                _LOGGER.warning("picamera2: close failed: %s", e)


def _import_picamera2() -> Any:
    try:
        import picamera2  # only this source needs it, and only on a Pi
    except ImportError as e:
        raise SourceError(
            f"picamera2 is not importable ({e}); on a Pi: sudo apt install python3-picamera2 and create the venv "
            "with python3 -m venv --system-site-packages; elsewhere choose --source camera:0"
        ) from e
    return picamera2
