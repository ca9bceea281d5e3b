"""Frame sources by name: the one registry that --source, the config and the docs read."""

from __future__ import annotations

from collections.abc import Callable

from edge.records import Frame
from edge.sources.base import (
    FrameSource,
    ImageTooLargeError,
    SourceBase,
    SourceConfig,
    SourceError,
    SourceUnavailableError,
    to_rgb8,
)
from edge.sources.images import ImageFolderSource
from edge.sources.imx500 import Imx500Source
from edge.sources.opencv import OpenCVSource, camera_source, video_source
from edge.sources.picamera2 import Picamera2Source
from edge.sources.synthetic import SyntheticSource

# kind -> (factory(arg, config, model_size, preview), what the argument is)
Factory = Callable[[str, SourceConfig, "tuple[int, int] | None", "str | None"], FrameSource]
SOURCES: dict[str, tuple[Factory, str]] = {
    "picamera2": (lambda _a, c, size, preview: Picamera2Source(c, model_size=size, preview=preview),
                  "the Raspberry Pi camera (main + lores streams)"),
    "camera": (lambda a, c, _s, _p: camera_source(a, c), "camera:N, an OpenCV VideoCapture device"),
    "video": (lambda a, c, _s, _p: video_source(a, c), "video:PATH_OR_URL, a file or RTSP/HTTP stream"),
    "images": (lambda a, c, _s, _p: ImageFolderSource(a, c), "images:DIR, every image in a folder, sorted"),
    "synthetic": (lambda _a, c, _s, _p: SyntheticSource(c), "generated frames for benchmarks"),
    "imx500": (lambda a, c, _s, _p: Imx500Source(a, c),
               "imx500:BUNDLE, the Raspberry Pi AI Camera running the bundle's trunk on its sensor"),
}


def parse_spec(spec: str) -> tuple[str, str]:
    """'images:samples' -> ('images', 'samples'); raises SourceError for an unknown kind."""
    kind, _, arg = spec.partition(":")
    if kind not in SOURCES:
        raise SourceError(f"unknown source {spec!r}; choose one of {', '.join(SOURCES)} (e.g. images:DIR, camera:0)")
    if kind in ("images", "video", "imx500") and not arg:
        example = {"images": "DIR", "video": "PATH", "imx500": "BUNDLE"}[kind]
        raise SourceError(f"source {kind}: needs an argument, e.g. {kind}:{example}")
    return kind, arg


def create_source(config: SourceConfig, *, model_size: tuple[int, int] | None = None,
                  preview: str | None = None) -> FrameSource:
    """The source config.spec names (not yet opened)."""
    kind, arg = parse_spec(config.spec)
    factory, _ = SOURCES[kind]
    return factory(arg, config, model_size, preview)


def describe() -> str:
    """One line per source kind, for --help."""
    return "; ".join(text if text.startswith(f"{kind}:") else f"{kind}: {text}" for kind, (_, text) in SOURCES.items())


__all__ = [
    "SOURCES", "Frame", "FrameSource", "ImageFolderSource", "ImageTooLargeError", "OpenCVSource", "Picamera2Source",
    "SourceBase", "SourceConfig", "SourceError", "SourceUnavailableError", "SyntheticSource", "create_source",
    "describe", "parse_spec", "to_rgb8",
]
