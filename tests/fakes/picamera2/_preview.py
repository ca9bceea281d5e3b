"""The previews as picamera2 has them (previews/{null,drm,qt}_preview*.py): their kinds, the keyword arguments they
take, and one running preview: whether its thread still runs and whether it has an overlay plane."""

from __future__ import annotations

import os
from collections.abc import Callable
from enum import Enum
from typing import Any

from ._journal import journal

_PREVIEW_KWARGS = {"x", "y", "width", "height", "transform"}


class Preview(Enum):
    NULL = "NullPreview"
    DRM = "DrmPreview"
    QT = "QtPreview"
    QTGL = "QtGlPreview"


class _Preview:
    """One running preview: its kind, whether its thread still runs, and its overlay plane."""

    def __init__(self, kind: Preview, **kwargs: Any) -> None:
        unknown = set(kwargs) - _PREVIEW_KWARGS
        if unknown:
            raise TypeError(f"{kind.value}.__init__() got an unexpected keyword argument {sorted(unknown)[0]!r}")
        if kind in (Preview.QT, Preview.QTGL) and not os.environ.get("DISPLAY"):
            # The real QApplication aborts the whole process here ("could not connect to display").
            raise RuntimeError("qt.qpa.xcb: could not connect to display")
        self.kind = kind
        self.alive = True
        self.rendered = False
        self.overlay_plane = kind is not Preview.DRM  # DRM reserves its planes at the first frame

    def render(self, display_connected: Callable[[], bool], overlay_plane: bool) -> None:
        """The preview thread draws a completed request; the DRM preview dies here without a display. The arguments
        are the package's test hooks (DRM_ROOT's view, DRM_OVERLAY_PLANE), read only at the first frame."""
        if self.kind is Preview.DRM and not self.rendered:
            if not display_connected():
                self.alive = False
                journal("preview_thread_died", error="Failed to reserve DRM plane")
                return
            self.overlay_plane = overlay_plane
        self.rendered = True
