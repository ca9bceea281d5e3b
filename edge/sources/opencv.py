"""camera:N and video:PATH_OR_URL through OpenCV's VideoCapture: USB webcams, video files, RTSP/HTTP streams."""

from __future__ import annotations

import logging
import os
import stat
import time
from typing import Any

import cv2
from numpy.typing import NDArray

from edge.records import Frame
from edge.sources.base import (
    ImageTooLargeError,
    SourceBase,
    SourceConfig,
    SourceError,
    SourceUnavailableError,
    check_pixels,
    to_rgb8,
)

_LOGGER = logging.getLogger(__name__)

_STREAM_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "udp://", "tcp://")


class OpenCVSource(SourceBase):
    """A VideoCapture device index or a file/URL. Files are read frame by frame; cameras and streams are live."""

    def __init__(self, target: int | str, config: SourceConfig | None = None) -> None:
        self.config = config or SourceConfig()
        self.target = target
        self.is_camera = isinstance(target, int)
        self.name = f"camera:{target}" if self.is_camera else f"video:{target}"
        self.live = self.is_camera or str(target).lower().startswith(_STREAM_SCHEMES)
        self._capture: cv2.VideoCapture | None = None
        self.refused = 0  # frames beyond [source] max_megapixels
        self._index = 0

    def open(self) -> None:
        if self.is_camera:
            check_pixels(self.config.width, self.config.height, self.config, f"{self.name} (--size)")
        capture = cv2.VideoCapture(self.target)
        if not capture.isOpened():
            capture.release()
            if self.live:  # a webcam not plugged in yet, a network camera not up yet: worth waiting for
                raise SourceUnavailableError(f"{self.name}: cannot open (no such device or stream yet, or busy)")
            raise SourceError(f"{self.name}: cannot open (no such file, or not a video OpenCV can read)")
        if self.is_camera:
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.config.width)
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.config.height)
            # Keep only the newest frame in the driver so a slow loop sees fresh frames, not a backlog.
            capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        # The container's or device's frame size, known before the first frame is decoded.
        width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        try:
            check_pixels(width, height, self.config, f"{self.name} frames")
        except ImageTooLargeError:
            capture.release()
            raise
        self._capture = capture
        _LOGGER.info("%s: opened", self.name)

    def read(self) -> Frame | None:
        if self._capture is None:
            raise SourceError(f"{self.name}: read before open")
        while True:
            image = self._next_image()
            if image is None:
                return None
            try:  # a stream may change size mid-way; OpenCV decodes before we see the frame, so check every one
                check_pixels(image.shape[1], image.shape[0], self.config, f"{self.name} frame {self._index}")
            except ImageTooLargeError as e:
                self.refused += 1
                self._index += 1
                _LOGGER.warning("skipping %s (%d refused so far)", e, self.refused)
                continue
            frame = Frame(image=to_rgb8(image, "BGR"), index=self._index, timestamp=time.time())
            self._index += 1
            return frame

    def _next_image(self) -> NDArray[Any] | None:
        assert self._capture is not None
        ok, image = self._capture.read()
        if not ok or image is None:
            if self.live:
                raise SourceError(f"{self.name}: read failed")
            if self.config.repeat and self._index > 0:
                self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
                ok, image = self._capture.read()
            if not ok or image is None:
                return None
        return image

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None


def camera_source(arg: str, config: SourceConfig) -> OpenCVSource:
    """camera:N, N a VideoCapture index (0 = /dev/video0)."""
    try:
        return OpenCVSource(int(arg or "0"), config)
    except ValueError:
        raise SourceError(f"camera:{arg}: expected a device number such as camera:0") from None


def video_source(arg: str, config: SourceConfig) -> OpenCVSource:
    """video:PATH_OR_URL, anything VideoCapture opens."""
    if not arg:
        raise SourceError("video: needs a file path or URL, such as video:clip.mp4 or video:rtsp://host/stream")
    if "\0" in arg:
        raise SourceError("video: the path contains a NUL byte")
    if "://" not in arg:
        try:
            mode = os.stat(arg).st_mode
        except OSError:
            mode = 0  # missing: open() says so
        if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISDIR(mode):
            raise SourceError(f"video:{arg}: not a video file (a FIFO, socket or folder; it would block or fail)")
    return OpenCVSource(arg, config)
