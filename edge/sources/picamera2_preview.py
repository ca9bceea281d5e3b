"""Which picamera2 preview can really show frames here: DRM, QtGL, Qt, or none.

picamera2's own DRM preview starts without complaint on a Pi with no monitor, then raises "Failed to reserve DRM
plane" on its preview thread at the first frame; that thread dies and no capture ever completes (picamera2 issues
#501, #586, #1028). So DRM is chosen only when a connector reports a display attached. On a desktop or through
`ssh -X`, picamera2's own rule applies (Picamera2.start_preview(True)): QtGL when DISPLAY names a local display
(":0"), Qt otherwise (e.g. "localhost:10.0", where OpenGL over the network would not work).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

_LOGGER = logging.getLogger(__name__)

PREVIEWS = ("auto", "drm", "qtgl", "qt")
DRM_ROOT = Path("/sys/class/drm")  # card0-HDMI-A-1/status etc.: "connected", "disconnected" or "unknown"


def connected_displays(drm_root: Path | None = None) -> list[str]:
    """The DRM connectors (e.g. "card1-HDMI-A-1") whose status says a display is connected."""
    names = []
    for status in sorted((drm_root or DRM_ROOT).glob("*/status")):
        try:
            if status.read_text(encoding="ascii", errors="replace").strip() == "connected":
                names.append(status.parent.name)
        except OSError as e:  # a connector going away while we look is no display
            _LOGGER.debug("%s: %s", status, e)
    return names


def choose_preview(requested: str, environ: Mapping[str, str] | None = None,
                   drm_root: Path | None = None) -> tuple[str | None, str]:
    """(preview to start or None, why), for a [preview] picamera2_preview of PREVIEWS."""
    env = os.environ if environ is None else environ
    drm_root = drm_root or DRM_ROOT
    display = env.get("DISPLAY", "")
    if requested == "auto":
        if display:
            kind = "qtgl" if display.startswith(":") else "qt"
            return kind, f"DISPLAY={display}"
        screens = connected_displays(drm_root)
        if screens:
            return "drm", f"display connected on {', '.join(screens)}"
        return None, f"no DISPLAY and no display connected ({drm_root}/*/status)"
    if requested == "drm":
        screens = connected_displays(drm_root)
        if not screens:
            return None, f"drm asked for, but no display is connected ({drm_root}/*/status)"
        return "drm", f"display connected on {', '.join(screens)}"
    if not display:
        return None, f"{requested} asked for, but DISPLAY is not set"
    return requested, f"DISPLAY={display}"
