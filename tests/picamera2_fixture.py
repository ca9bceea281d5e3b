"""For the `fake` fixtures: tests/fakes/picamera2 imported as picamera2, reset, on a headless machine."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from conftest import REPO

from edge.sources import picamera2_preview

FAKES = REPO / "tests" / "fakes"


def fake_picamera2(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[ModuleType]:
    """The fake picamera2 on a headless machine: one camera, VC4, no display connected (an empty sysfs view that
    both the fake's DRM preview and edge's preview choice read)."""
    monkeypatch.syspath_prepend(str(FAKES))
    sys.modules.pop("picamera2", None)
    module = importlib.import_module("picamera2")
    assert module.__file__ and str(FAKES) in module.__file__
    module.INSTANCES.clear()
    module._ACQUIRED.clear()
    drm = tmp_path / "drm"
    drm.mkdir()
    monkeypatch.setattr(module, "PLATFORM", "VC4")
    monkeypatch.setattr(module, "DRM_ROOT", drm)
    monkeypatch.setattr(picamera2_preview, "DRM_ROOT", drm)
    monkeypatch.delenv("DISPLAY", raising=False)
    yield module
    sys.modules.pop("picamera2", None)


def connect_display(drm: Path, name: str = "card1-HDMI-A-1") -> None:
    """A monitor on a connector, as /sys/class/drm shows it."""
    (drm / name).mkdir()
    (drm / name / "status").write_text("connected\n")
