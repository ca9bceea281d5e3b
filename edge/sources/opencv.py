"""camera:N and video:PATH_OR_URL through OpenCV's VideoCapture: USB webcams, video files, RTSP/HTTP streams."""

from __future__ import annotations

import logging
import time

import cv2

from edge.sources.base import Frame, SourceBase, SourceConfig, SourceError, to_rgb8

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
        self._index = 0

    def open(self) -> None:
        capture = cv2.VideoCapture(self.target)
        if not capture.isOpened():
            capture.release()
            raise SourceError(f"{self.name}: cannot open (no such device, file or stream, or no permission)")
        if self.is_camera:
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.config.width)
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.config.height)
            # Keep only the newest frame in the driver so a slow loop sees fresh frames, not a backlog.
            capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        self._capture = capture
        _LOGGER.info("%s: opened", self.name)

    def read(self) -> Frame | None:
        if self._capture is None:
            raise SourceError(f"{self.name}: read before open")
        ok, image = self._capture.read()
        if not ok or image is None:
            if self.live:
                raise SourceError(f"{self.name}: read failed")
            if self.config.repeat and self._index > 0:
                self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
                ok, image = self._capture.read()
            if not ok or image is None:
                return None
        frame = Frame(image=to_rgb8(image, "BGR"), index=self._index, timestamp=time.time())
        self._index += 1
        return frame

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
    return OpenCVSource(arg, config)
