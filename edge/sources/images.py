"""images:DIR, the files of a folder in sorted order: batch work, tests and the bundled samples."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import cv2
import numpy as np

from edge.records import U8, Frame
from edge.sources.base import (
    SLIDESHOW_FPS,
    ImageTooLargeError,
    Pacer,
    SourceBase,
    SourceConfig,
    SourceError,
    check_pixels,
    to_rgb8,
)
from edge.sources.header import image_size

_LOGGER = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm"})


class ImageFolderSource(SourceBase):
    """Every image file in a folder (not recursive), by name; unreadable images are skipped and counted."""

    live = False

    def __init__(self, folder: str | Path, config: SourceConfig | None = None) -> None:
        self.folder = Path(folder)
        self.name = f"images:{folder}"
        self.config = config or SourceConfig()
        self.repeat = self.config.repeat
        self.paths: list[Path] = []
        self.skipped = 0  # files with an image suffix that could not be decoded, or too large
        self._next = 0
        self._index = 0
        fps = self.config.fps
        self.fps = fps if fps is not None else (SLIDESHOW_FPS if self.repeat else 0.0)
        self._pacer = Pacer(self.fps)

    def open(self) -> None:
        if not self.folder.is_dir():
            raise SourceError(f"images:{self.folder}: not a directory")
        self.paths = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not self.paths:
            raise SourceError(f"images:{self.folder}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
        self._next = 0
        _LOGGER.info("images:%s: %d files", self.folder, len(self.paths))
        if self.config.fps is None and self.repeat:
            _LOGGER.info("images:%s: repeating at %g fps (--fps sets the pace, --fps 0 runs as fast as it can)",
                         self.folder, self.fps)

    def read(self) -> Frame | None:
        while True:
            if self._next >= len(self.paths):
                if not self.repeat or self.skipped >= len(self.paths):
                    return None
                self._next = 0
                self.skipped = 0
            path = self.paths[self._next]
            self._next += 1
            image = self._decode(path)
            if image is not None:
                paced_ms = self._pacer.wait()
                frame = Frame(image=image, index=self._index, timestamp=time.time(), name=path.name,
                              paced_ms=paced_ms)
                self._index += 1
                return frame

    def _decode(self, path: Path) -> U8 | None:
        # IMREAD_COLOR turns gray, palette, alpha and 16-bit files into 8-bit BGR; np.fromfile avoids
        # OpenCV's silent failure on non-ASCII paths. The size is checked from the header before decoding.
        reason = "not a readable image"
        decoded = None
        try:
            data = np.fromfile(path, np.uint8)
            size = image_size(data.tobytes())  # TIFF may keep its sizes at the end: the whole file
            if size is not None:
                check_pixels(*size, self.config, path.name)
            decoded = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
            if decoded is not None:  # a format the header reader does not know: checked after all
                check_pixels(decoded.shape[1], decoded.shape[0], self.config, path.name)
        except ImageTooLargeError as e:
            decoded, reason = None, str(e)
        except (OSError, cv2.error) as e:
            decoded = None
            _LOGGER.debug("%s: %s", path, e)
        if decoded is None:
            self.skipped += 1
            _LOGGER.warning("skipping %s: %s (%d skipped so far)", path, reason, self.skipped)
            return None
        return to_rgb8(decoded, "BGR")
