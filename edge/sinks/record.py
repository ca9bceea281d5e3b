"""The JSON record of one explained frame, shared by the disk log, stdout and (later) MQTT, and the log policy."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from edge.records import Result


def peak_position(cam: np.ndarray[Any, np.dtype[np.float32]]) -> tuple[float, float]:
    """Where the CAM is largest, as (x, y) fractions of the width and height in [0, 1] (cell centres)."""
    row, col = np.unravel_index(int(np.argmax(cam)), cam.shape)
    return (float(col) + 0.5) / cam.shape[1], (float(row) + 0.5) / cam.shape[0]


def make_record(result: Result) -> dict[str, Any]:
    """The record's fields: UTC time, source, frame number, class, probabilities, latencies, heatmap peak."""
    ex = result.explanation
    names = result.class_names or tuple(str(i) for i in range(len(ex.probabilities)))
    px, py = peak_position(result.cam)
    height, width = result.frame.image.shape[:2]
    record: dict[str, Any] = {
        "time": datetime.fromtimestamp(result.frame.timestamp, UTC).isoformat(timespec="milliseconds"),
        "source": result.source,
        "frame": result.frame.index,
        "label": ex.label,
        "class_index": ex.class_index,
        "confidence": round(float(ex.probabilities[ex.class_index]), 6),
        "probabilities": {name: round(float(p), 6) for name, p in zip(names, ex.probabilities, strict=True)},
        "top": [[name, round(p, 6)] for name, p in result.top],
        "method": ex.method,
        "score": round(ex.score, 6),
        "latency_ms": {k: round(v, 3) for k, v in result.timings.items()}
        | ({"render": round(result.render_ms, 3)} if result.render_ms is not None else {}),
        "peak": {"x": round(px, 4), "y": round(py, 4), "x_px": int(px * width), "y_px": int(py * height)},
        "size": [width, height],
        "fps": round(result.fps, 2),
        "dropped": result.dropped,
    }
    if result.frame.name:
        record["file"] = result.frame.name
    if result.model_sha256:
        record["model_sha256"] = result.model_sha256
    if result.faithfulness is not None:
        record["faithfulness"] = result.faithfulness
    if result.drift is not None:
        record["drift"] = {k: v for k, v in result.drift.items() if k != "events"}
    return record


@dataclass(frozen=True)
class PolicyConfig:
    """When a frame is worth recording: every N seconds, on a class change, above a confidence, or every frame."""

    every_s: float = field(default=10.0, metadata={"range": (0.0, 86400.0), "doc": "log at least every N s; 0 = off"})
    on_change: bool = field(default=True, metadata={"doc": "log when the predicted class changes"})
    above: float | None = field(default=None, metadata={"range": (0.0, 1.0), "doc": "log when confidence >= this"})
    every_frame: bool | None = field(default=None, metadata={
        "doc": "log every frame; unset = only for images: and video files"})


class LogPolicy:
    """Decides per result whether to record it; remembers the last recorded time and the last class seen."""

    def __init__(self, config: PolicyConfig, *, every_frame_default: bool) -> None:
        self.config = config
        self.every_frame = every_frame_default if config.every_frame is None else config.every_frame
        self._last_time: float | None = None
        self._last_class: int | None = None

    def should_log(self, result: Result) -> bool:
        now = result.frame.timestamp
        ex = result.explanation
        changed = self._last_class is not None and ex.class_index != self._last_class
        self._last_class = ex.class_index
        due = self._last_time is None or (self.config.every_s > 0 and now - self._last_time >= self.config.every_s)
        above = self.config.above is not None and float(ex.probabilities[ex.class_index]) >= self.config.above
        scores = result.faithfulness  # [faithfulness] scores are rare: never lost between records (a skip may be)
        scored = scores is not None and "skipped" not in scores
        if self.every_frame or due or (changed and self.config.on_change) or above or scored:
            self._last_time = now
            return True
        return False
