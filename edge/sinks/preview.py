"""The live preview on a desktop: an OpenCV window showing the overlay, closed with q, Esc or the window's button."""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2

from edge.records import Result, SinkError

_LOGGER = logging.getLogger(__name__)

PREVIEW_KINDS = ("auto", "opencv", "picamera2")
_QUIT_KEYS = (ord("q"), 27)


@dataclass(frozen=True)
class PreviewConfig:
    """[preview]: the live view on a screen."""

    enabled: bool = field(default=True, metadata={"doc": "show a preview when a display is available"})
    kind: str = field(default="auto", metadata={
        "choices": PREVIEW_KINDS, "doc": "opencv window, picamera2's own preview, or auto"})
    picamera2_preview: str = field(default="auto", metadata={
        "choices": ("auto", "drm", "qtgl", "qt"),
        "doc": "picamera2 preview; auto = drm on a connected display, qtgl/qt with DISPLAY (as picamera2), else none"})
    window_title: str = field(default="edge-explainer", metadata={"doc": "OpenCV window title"})


def has_display() -> bool:
    """Whether a desktop session is there to open a window on."""
    return sys.platform in ("win32", "darwin") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def opencv_has_gui() -> bool:
    """opencv-python-headless (the Pi requirement) has no highgui backend; opencv-python and apt's python3-opencv do."""
    match = re.search(r"^\s*GUI:\s*(\S+)", cv2.getBuildInformation(), re.MULTILINE)
    return match is None or match.group(1).upper() != "NONE"


class OpenCVPreviewSink:
    """Shows each overlay in a window; must run on the loop's own thread (GUI toolkits want one thread)."""

    name = "preview"
    live_view = True  # shows every frame, explained or not

    def __init__(self, config: PreviewConfig, on_quit: Callable[[], None] | None = None) -> None:
        self.config = config
        self.on_quit = on_quit
        self._shown = False

    def check(self) -> None:
        """What open() needs, checked without opening a window (for --check-config)."""
        if not opencv_has_gui():
            raise SinkError("this OpenCV has no GUI (opencv-python-headless): install opencv-python or apt's "
                            "python3-opencv for a window, or run with --no-display")
        if not has_display():
            raise SinkError("no display (DISPLAY/WAYLAND_DISPLAY unset) for the preview window: use --no-display")

    def open(self) -> None:
        self.check()
        try:
            cv2.namedWindow(self.config.window_title, cv2.WINDOW_AUTOSIZE)
        except cv2.error as e:
            raise SinkError(f"cannot open the preview window: {e}") from e

    def handle(self, result: Result) -> None:
        # cvtColor, not a reversed view: OpenCV would copy the view element by element first (5x slower).
        cv2.imshow(self.config.window_title, cv2.cvtColor(result.overlay, cv2.COLOR_RGB2BGR))
        key = cv2.waitKey(1) & 0xFF
        closed = self._shown and cv2.getWindowProperty(self.config.window_title, cv2.WND_PROP_VISIBLE) < 1
        self._shown = True
        if (key in _QUIT_KEYS or closed) and self.on_quit is not None:
            _LOGGER.info("preview closed: stopping")
            self.on_quit()

    def close(self) -> None:
        if self._shown:
            cv2.destroyWindow(self.config.window_title)
            cv2.waitKey(1)
