"""The records the loop hands around: a captured Frame (sources make it), an explained Result (every sink gets it)
and the error a sink raises. Sources, sinks and the browser view import them from here: no output knows a camera."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from edge.errors import EdgeError
from edge.explain.explainer import Explanation

U8 = NDArray[np.uint8]


@dataclass
class Frame:
    """One captured frame."""

    image: U8  # (H, W, 3) uint8 RGB: what is displayed, logged and overlaid
    index: int  # 0-based frame number from this source
    timestamp: float  # time.time() when captured
    name: str = ""  # file name for images:, empty otherwise
    lores: U8 | None = None  # (h, w, 3) uint8 RGB near the model input (picamera2's lores stream), or None
    paced_ms: float = 0.0  # how long read() slept to keep --fps: not capture time
    sensor: Any = None  # the AI Camera's output for this frame (edge/sources/imx500.py SensorOutput), or None

    @property
    def model_image(self) -> U8:
        """The image to run the model on: lores when the source gives one, else the full frame."""
        return self.image if self.lores is None else self.lores


class PendingScores:
    """One frame's [faithfulness] entry, delivered later by the background worker. Set once, the first value wins:
    the scores, or {"skipped": reason} when they cannot come (worker busy, failed, stopped, or too late)."""

    def __init__(self, value: dict[str, Any] | None = None) -> None:
        self._done = threading.Event()
        self._lock = threading.Lock()
        self.value: dict[str, Any] | None = None
        if value is not None:
            self.resolve(value)

    def resolve(self, value: dict[str, Any]) -> bool:
        """Deliver the entry; False (and nothing changes) when one was delivered before."""
        with self._lock:
            if self._done.is_set():
                return False
            self.value = value
            self._done.set()
            return True

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float) -> bool:
        return self._done.wait(timeout)


class SinkError(EdgeError):
    """A sink cannot start (no GUI, port taken, log directory not writable)."""


@dataclass
class Result:
    """One explained frame, as every sink sees it. Sinks must not modify it: several share one Result.

    The overlay is drawn on first use, by the first sink that needs it, on that sink's thread, and then shared: the
    loop's thread only explains, and frames no sink draws (stdout, a disk log between its records, MQTT without
    overlays) cost no drawing at all.
    """

    frame: Frame
    explanation: Explanation
    cam: NDArray[np.float32]  # (h, w) float32 in [0, 1]: the map drawn (smoothed if smoothing is on)
    top: list[tuple[str, float]]  # (class name, probability), best first
    source: str  # the source spec, e.g. "images:samples"
    fps: float  # explained frames per second, smoothed
    timings: dict[str, float] = field(default_factory=dict)  # ms per stage: capture, preprocess, ..., explain
    dropped: int = 0  # frames the capture thread dropped so far because the loop was busy
    model_sha256: str = ""
    class_names: tuple[str, ...] = ()
    draw: Callable[[], NDArray[np.uint8]] | None = field(default=None, repr=False, compare=False)
    drawn: NDArray[np.uint8] | None = field(default=None, repr=False, compare=False)  # set: no drawing needed
    render_ms: float | None = None  # how long drawing took, once drawn
    scoring: PendingScores | None = None  # [faithfulness]: this frame was due for scoring; its entry arrives here
    explained: bool = True  # False: a live frame the trigger skipped, shown under the last explanation (live views)
    drift: dict[str, Any] | None = None  # the drift monitor's latest status (state, distance, ...), when it runs
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    @property
    def faithfulness(self) -> dict[str, Any] | None:
        """This frame's [faithfulness] entry (its scores or {"skipped": reason}); None if not due or not yet here."""
        return None if self.scoring is None else self.scoring.value

    @property
    def overlay(self) -> NDArray[np.uint8]:
        """(H, W, 3) uint8 RGB: the frame with heatmap, label, top-k panel and fps (drawn once, on first use)."""
        with self._lock:
            if self.drawn is None:
                if self.draw is None:
                    raise ValueError("this Result has no overlay and no way to draw one")
                t0 = time.perf_counter()
                self.drawn = self.draw()
                self.render_ms = (time.perf_counter() - t0) * 1e3
            return self.drawn
