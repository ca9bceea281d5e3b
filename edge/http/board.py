"""What the dashboard shows beside the live frame: recent events (frames the log policy keeps: class changes,
confident frames, one every so often) as JPEGs in memory, per-class mean heatmaps since start, and health figures."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from edge.explain.render import colorize
from edge.jpeg import encode_rgb
from edge.records import Result
from edge.sinks.record import LogPolicy, PolicyConfig

HEATMAP_SIZE = 32  # cells of the per-class mean maps
MAX_FIELD = 200  # characters of a string in the events listing


@dataclass(frozen=True)
class Event:
    """One kept frame: its number in the ring, its record, the plain frame and the overlay as JPEG."""

    id: int
    record: dict[str, Any]
    frame_jpeg: bytes
    overlay_jpeg: bytes


class EventRing:
    """The last N kept frames, newest last; the same policy keys as the disk log ([log] every_s, on_change, above)."""

    def __init__(self, size: int, policy: PolicyConfig, quality: int) -> None:
        self.events: deque[Event] = deque(maxlen=max(size, 1))
        self.size = size
        # Events a listing named, kept a while after they leave the ring: a page fetches their JPEGs after the
        # listing, and when frames are kept many times a second the ring has moved on by then.
        self.listed: OrderedDict[int, Event] = OrderedDict()
        self.policy = LogPolicy(policy, every_frame_default=False)
        self.quality = quality
        self._next = 1
        self._lock = threading.Lock()

    def offer(self, result: Result, record: dict[str, Any], overlay_jpeg: Callable[[], bytes]) -> None:
        """Keep the frame if the policy says so (its JPEGs are encoded only then)."""
        if not self.size or not self.policy.should_log(result):
            return
        frame_jpeg = encode_rgb(result.frame.image, self.quality) or b""
        overlay = overlay_jpeg()
        with self._lock:
            self.events.append(Event(self._next, record, frame_jpeg, overlay))
            self._next += 1

    def seed(self, logged: list[tuple[dict[str, Any], bytes, bytes]]) -> None:
        """Start from frames kept before this process (record, frame JPEG, overlay JPEG; oldest first)."""
        with self._lock:
            for record, frame_jpeg, overlay_jpeg in logged[-self.size:] if self.size > 0 else []:
                self.events.append(Event(self._next, record, frame_jpeg, overlay_jpeg))
                self._next += 1

    def listing(self) -> list[dict[str, Any]]:
        """Newest first: id, time, label, confidence, frame number, method."""
        with self._lock:
            events = list(self.events)
            for e in events:
                self.listed[e.id] = e
                self.listed.move_to_end(e.id)
            while len(self.listed) > 3 * self.size:
                self.listed.popitem(last=False)
        keys = ("time", "label", "confidence", "frame", "method")
        return [{"id": e.id, **{k: _scalar(e.record.get(k)) for k in keys}} for e in reversed(events)]

    def get(self, event_id: int) -> Event | None:
        with self._lock:
            return next((e for e in self.events if e.id == event_id), None) or self.listed.get(event_id)


def _scalar(value: object) -> object:
    """A listing's field: a number, or a string cut to MAX_FIELD characters (a record read back from a log may hold
    anything: the listing stays small whatever it holds)."""
    if isinstance(value, bool | int | float) or value is None:
        return value
    return str(value)[:MAX_FIELD] if isinstance(value, str) else None


class MeanHeatmaps:
    """The mean CAM per predicted class since start, at HEATMAP_SIZE x HEATMAP_SIZE."""

    def __init__(self, classes: int) -> None:
        self.sums = np.zeros((classes, HEATMAP_SIZE, HEATMAP_SIZE), np.float64)  # (C, S, S) float64
        self.counts = np.zeros(classes, np.int64)  # (C,) int64
        self._png: dict[int, tuple[int, bytes]] = {}  # class -> (count it was drawn at, PNG)
        self._lock = threading.Lock()
        # [faithfulness]: the scoring worker's running means per class name (a copy), over every scored frame
        self.faithfulness: Callable[[], dict[str, dict[str, float]]] | None = None

    def faithfulness_means(self) -> dict[str, dict[str, float]]:
        """Per class name: each score's running mean and "n", the frames scored; empty when nothing scores."""
        return {} if self.faithfulness is None else self.faithfulness()

    def add(self, class_index: int, cam: NDArray[np.float32]) -> None:
        small = cv2.resize(np.asarray(cam, np.float32), (HEATMAP_SIZE, HEATMAP_SIZE), interpolation=cv2.INTER_AREA)
        with self._lock:
            if 0 <= class_index < len(self.counts):
                self.sums[class_index] += small
                self.counts[class_index] += 1

    def image(self, class_index: int, size: int = 96) -> bytes | None:
        """The class's mean map, jet-coloured, as PNG bytes; None before the class was ever predicted."""
        with self._lock:
            if not 0 <= class_index < len(self.counts) or self.counts[class_index] == 0:
                return None
            count = int(self.counts[class_index])
            cached = self._png.get(class_index)
            if cached is not None and cached[0] == count:
                return cached[1]
            mean = (self.sums[class_index] / count).astype(np.float32)  # (S, S) float32
        data = heatmap_png(mean, size)
        if data is not None:
            with self._lock:
                self._png[class_index] = (count, data)
        return data

    def listing(self) -> list[int]:
        with self._lock:
            return [int(c) for c in self.counts]


def heatmap_png(m: NDArray[np.float32], size: int = 96) -> bytes | None:
    """An (h, w) map in [0, 1], size x size and jet-coloured, as PNG bytes (None if OpenCV cannot encode it)."""
    big = np.asarray(cv2.resize(np.asarray(m, np.float32), (size, size), interpolation=cv2.INTER_LINEAR),
                     np.float32)  # (size, size) float32
    ok, data = cv2.imencode(".png", cv2.cvtColor(colorize(big, "jet"), cv2.COLOR_RGB2BGR))
    return data.tobytes() if ok else None


def cpu_temperature() -> float | None:
    """The SoC temperature in degrees C where the kernel reports it (a Pi: thermal_zone0), else None."""
    for zone in sorted(Path("/sys/class/thermal").glob("thermal_zone*")):
        try:
            kind = (zone / "type").read_text().strip()
            if "cpu" in kind or "soc" in kind or kind == "x86_pkg_temp":
                return round(int((zone / "temp").read_text()) / 1000, 1)
        except (OSError, ValueError):
            continue
    return None


def health(record: dict[str, Any], about: dict[str, Any], started: float, viewers: int) -> dict[str, Any]:
    """fps, drops, per-stage latency of the newest frame, CPU temperature, uptime, model and runtime figures."""
    return {
        "fps": record.get("fps"),
        "dropped": record.get("dropped"),
        "latency_ms": record.get("latency_ms", {}),
        "cpu_temp_c": cpu_temperature(),
        "uptime_s": round(time.monotonic() - started, 1),
        "viewers": viewers,
        "process_threads": threading.active_count(),
        **about,
    }
