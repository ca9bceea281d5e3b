"""The frame-source seam: a Frame, the FrameSource protocol every source follows, and conversion to RGB uint8."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable

import cv2
import numpy as np
from numpy.typing import NDArray

from edge.errors import EdgeError
from edge.records import U8, Frame

_LOGGER = logging.getLogger(__name__)

AnyArray = NDArray[Any]


class SourceError(EdgeError):
    """A frame source cannot be opened or read (missing device, file, module or stream)."""


class SourceUnavailableError(SourceError):
    """The device is absent or busy for now (a camera not yet up at boot, unplugged, held by another program):
    worth waiting for, unlike a configuration error."""


# images: with repeat and no fps: a looping folder run unpaced would spin a core at hundreds of frames per second
SLIDESHOW_FPS = 5.0


@dataclass(frozen=True)
class SourceConfig:
    """[source]: which frames to read and how."""

    spec: str = field(default="picamera2", metadata={
        "doc": "picamera2, camera:N, video:PATH_OR_URL, images:DIR, synthetic or imx500:BUNDLE"})
    width: int = field(default=640, metadata={"range": (16, 8192), "doc": "capture width (camera, synthetic)"})
    height: int = field(default=480, metadata={"range": (16, 8192), "doc": "capture height (camera, synthetic)"})
    fps: float | None = field(default=None, metadata={
        "range": (0.0, 240.0), "doc": "frame rate of synthetic and images: (a slideshow); 0 = as fast as possible; "
        f"unset = as fast as possible, except images: with repeat: {SLIDESHOW_FPS:g} (a looping slideshow)"})
    repeat: bool = field(default=False, metadata={"doc": "start again at the end of images: or video: (soak runs)"})
    camera_num: int = field(default=0, metadata={"range": (0, 16), "doc": "picamera2 camera index"})
    main_format: str = field(default="XBGR8888", metadata={
        "choices": ("XBGR8888", "XRGB8888", "RGB888", "BGR888"), "doc": "picamera2 main (display) stream format"})
    lores_format: str = field(default="YUV420", metadata={
        "choices": ("YUV420", "YVU420", "RGB888", "BGR888"),
        "doc": "picamera2 lores format; Pi 4 and earlier need YUV420 or YVU420"})
    capture_timeout_s: float = field(default=5.0, metadata={
        "range": (0.1, 600.0), "doc": "picamera2: a capture taking longer than this is a hung camera (reopened)"})
    max_megapixels: float = field(default=50.0, metadata={
        "range": (0.01, 1000.0), "doc": "refuse images and frames larger than this, checked before decoding"})


@runtime_checkable
class FrameSource(Protocol):
    """Where frames come from. read() gives the next frame, None at the end, or raises SourceError."""

    name: str  # the spec it was made from, for logs and records
    live: bool  # True: frames come whether or not we keep up, so drop when behind. False: files; never drop.

    def open(self) -> None: ...

    def read(self) -> Frame | None: ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None: ...


class SourceBase:
    """open/close as a context manager, for the concrete sources."""

    name = ""
    live = True

    def open(self) -> None:
        """Acquire the device or file; the default has nothing to acquire."""

    def close(self) -> None:
        """Release the device or file; the default has nothing to release."""

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class ImageTooLargeError(SourceError):
    """An image or frame beyond [source] max_megapixels (refused before decoding where the header tells)."""


def check_pixels(width: int, height: int, config: SourceConfig | None, what: str) -> None:
    """Raise ImageTooLargeError when width x height exceeds config.max_megapixels (a 20000x20000 PNG is 1.2 MB on disk,
    1.2 GB decoded: an out-of-memory kill on a Pi)."""
    limit = (config or SourceConfig()).max_megapixels
    if width * height > limit * 1e6:
        raise ImageTooLargeError(f"{what}: {width}x{height} is {width * height / 1e6:.1f} MP, more than the "
                            f"[source] max_megapixels limit of {limit:g} MP")


class Pacer:
    """Sleeps so that successive calls to wait() are at least 1 / fps apart; fps 0 never sleeps."""

    def __init__(self, fps: float | None) -> None:
        self.period = 1.0 / fps if fps else 0.0
        self._next = 0.0

    def wait(self) -> float:
        """Sleep until the next frame is due; returns the ms slept."""
        if not self.period:
            return 0.0
        now = time.monotonic()
        slept = max(0.0, self._next - now)
        if slept:
            time.sleep(slept)
        self._next = max(now, self._next) + self.period
        return slept * 1e3


def to_rgb8(image: NDArray[Any], channel_order: str = "BGR") -> U8:
    """Any decoded image -> (H, W, 3) uint8 RGB: gray, alpha, 16-bit and float inputs are converted.

    channel_order names the order of a 3- or 4-channel input ("BGR" from OpenCV, "RGB" otherwise).
    Raises SourceError for shapes that are not an image (empty, 1-D, more than 4 channels).
    """
    if image.size == 0 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise SourceError(f"not an image: shape {image.shape} dtype {image.dtype}")
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype.kind == "f":
        with np.errstate(over="ignore"):  # huge values overflow to inf, which the clip maps to 255 as wanted
            image = np.asarray(np.clip(np.nan_to_num(image) * 255.0 + 0.5, 0, 255), np.uint8)
    elif image.dtype != np.uint8:
        image = np.asarray(np.clip(image, 0, 255), np.uint8)
    if image.ndim == 2 or image.shape[2] == 1:
        return np.asarray(cv2.cvtColor(np.ascontiguousarray(image.reshape(image.shape[:2])), cv2.COLOR_GRAY2RGB))
    if image.shape[2] == 4:
        image = image[:, :, :3]
    if channel_order == "BGR":
        image = image[:, :, ::-1]
    return np.ascontiguousarray(image, np.uint8)
