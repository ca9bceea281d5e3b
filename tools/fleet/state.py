"""What the fleet watcher knows about every camera, built from its MQTT messages, and the pictures drawn from it.

Per device: online/offline, fps, drops, the last label and confidence, counts per class, the mean small heatmap per
class (where the model looks when it says that class) and the latest overlay JPEG.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from tools.common.contact_sheet import heatmap_rgb, write_sheet

_LOGGER = logging.getLogger(__name__)
KINDS = ("status", "prediction", "overlay", "stats", "drift")


@dataclass
class DeviceState:
    name: str
    online: bool | None = None  # None: no status message seen yet
    fps: float = 0.0
    frames_dropped: int = 0
    mqtt_dropped: int = 0
    label: str = ""
    confidence: float = 0.0
    last_seen: float = 0.0
    class_counts: Counter[str] = field(default_factory=Counter)
    heat_sum: dict[str, NDArray[np.float64]] = field(default_factory=dict)  # class -> (s, s) float64 sum
    messages: Counter[str] = field(default_factory=Counter)  # kind -> count
    frames: set[int] = field(default_factory=set)  # frame numbers of the predictions received
    overlay: bytes = b""
    class_names: list[str] = field(default_factory=list)
    drift: dict[str, Any] = field(default_factory=dict)  # the retained drift state ({} without a monitor)

    @property
    def drift_text(self) -> str:
        """The drift column: '-', learning, ok, or ALERT with the class and cause."""
        state = self.drift.get("state", "-")
        if state != "alert":
            return str(state)
        return f"ALERT {self.drift.get('class', '')}: {self.drift.get('cause', '')}"

    def mean_heatmap(self, label: str) -> NDArray[np.float32] | None:
        n = self.class_counts[label]
        return None if n == 0 else (self.heat_sum[label] / n).astype(np.float32)


class Fleet:
    """Every device under a topic prefix; feed() takes one MQTT message (topic, payload)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix.rstrip("/")
        self.devices: dict[str, DeviceState] = {}
        self.total = 0
        self.live = 0  # messages published while we listened (not retained copies)
        self.bad = 0
        self.first: float | None = None
        self.last: float | None = None

    def feed(self, topic: str, payload: bytes, now: float | None = None, *, retained: bool = False) -> None:
        parts = topic[len(self.prefix) + 1:].split("/") if topic.startswith(self.prefix + "/") else []
        if len(parts) != 2 or parts[1] not in KINDS:
            return
        now = time.monotonic() if now is None else now
        name, kind = parts
        device = self.devices.setdefault(name, DeviceState(name))
        device.messages[kind] += 1
        device.last_seen = now
        self.total += 1
        if not retained:  # retained messages arrive in a burst at subscription: not part of the message rate
            self.live += 1
            self.first = now if self.first is None else self.first
            self.last = now
        try:
            self._apply(device, kind, payload)
        except (ValueError, KeyError, TypeError) as e:  # one malformed message must not end the watch
            self.bad += 1
            _LOGGER.warning("%s: unreadable %s message (%s)", name, kind, e)

    def _apply(self, device: DeviceState, kind: str, payload: bytes) -> None:
        if kind == "status":
            device.online = {b"online": True, b"offline": False}.get(payload)
        elif kind == "overlay":
            device.overlay = payload
        elif kind == "drift":
            device.drift = dict(json.loads(payload)) if payload else {}
        elif kind == "stats":
            stats = json.loads(payload)
            device.fps = float(stats.get("fps", 0.0))
            device.frames_dropped = int(stats.get("frames_dropped", 0))
            device.mqtt_dropped = int(stats.get("mqtt_dropped", 0))
        elif kind == "prediction":
            record: dict[str, Any] = json.loads(payload)
            label = str(record["label"])
            device.label = label
            device.confidence = float(record["probabilities"][label])
            device.fps = float(record.get("fps", device.fps))
            device.class_names = list(record["probabilities"])
            device.class_counts[label] += 1
            device.frames.add(int(record["frame"]))
            heat = np.asarray(record["heatmap"], np.float64)  # (s, s) in [0, 1]
            device.heat_sum[label] = device.heat_sum.get(label, 0.0) + heat

    @property
    def rate(self) -> float:
        """Live messages per second, from the first to the last one received."""
        if self.first is None or self.last is None or self.last <= self.first:
            return 0.0
        return (self.live - 1) / (self.last - self.first)

    def table(self) -> str:
        """The live table, one line per device."""
        head = (f"{'device':<16} {'state':<8} {'fps':>6} {'drops':>6} {'mqtt':>5} {'label':<12} {'conf':>5}  "
                f"{'drift':<34} counts")
        lines = [head, "-" * len(head)]
        # cameras in drift alert first: they need a person
        for name in sorted(self.devices, key=lambda n: (self.devices[n].drift.get("state") != "alert", n)):
            d = self.devices[name]
            state = {True: "online", False: "OFFLINE", None: "?"}[d.online]
            counts = " ".join(f"{c}:{n}" for c, n in sorted(d.class_counts.items()))
            lines.append(f"{name[:16]:<16} {state:<8} {d.fps:>6.1f} {d.frames_dropped:>6} {d.mqtt_dropped:>5} "
                         f"{d.label[:12]:<12} {d.confidence:>5.2f}  {d.drift_text[:34]:<34} {counts}")
        lines.append(f"{len(self.devices)} devices, {self.total} messages, {self.rate:.0f} msg/s"
                     + (f", {self.bad} unreadable" if self.bad else ""))
        return "\n".join(lines)

    def summary(self) -> dict[str, Any]:
        return {
            "devices": {name: {"online": d.online, "messages": dict(d.messages), "predictions": len(d.frames),
                               "class_counts": dict(d.class_counts), "fps": d.fps, "frames_dropped": d.frames_dropped,
                               "mqtt_dropped": d.mqtt_dropped, "label": d.label, "drift": d.drift}
                        for name, d in sorted(self.devices.items())},
            "messages": self.total, "unreadable": self.bad, "messages_per_s": round(self.rate, 1),
        }

    def write(self, out: Path) -> list[Path]:
        """The contact sheet of the latest overlays, a mean-heatmap figure per device, and summary.json."""
        out.mkdir(parents=True, exist_ok=True)
        written = []
        tiles = []
        for name in sorted(self.devices):
            d = self.devices[name]
            image = _decode(d.overlay)
            if image is not None:
                state = " (off)" if d.online is False else ""
                tiles.append((image, f"{name}{state} {d.label} {d.confidence:.0%}"))
        if tiles:
            per_row = 5
            write_sheet(out / "fleet.png", [tiles[i:i + per_row] for i in range(0, len(tiles), per_row)], tile=200,
                        title=f"latest overlay of {len(tiles)} cameras")
            written.append(out / "fleet.png")
        for name in sorted(self.devices):
            path = out / f"heatmaps-{name}.png"
            if self._write_heatmaps(self.devices[name], path):
                written.append(path)
        (out / "summary.json").write_text(json.dumps(self.summary(), indent=2) + "\n")
        written.append(out / "summary.json")
        return written

    @staticmethod
    def _write_heatmaps(d: DeviceState, path: Path) -> bool:
        """The latest overlay, then per class the mean heatmap over every prediction of that class."""
        labels = d.class_names or sorted(d.class_counts)
        row: list[tuple[NDArray[np.uint8], str]] = []
        latest = _decode(d.overlay)
        if latest is not None:
            row.append((latest, "latest overlay"))
        for label in labels:
            mean = d.mean_heatmap(label)
            if mean is None:
                row.append((np.full((160, 160, 3), 235, np.uint8), f"{label}: never"))
            else:
                # scaled to its own maximum: the mean of many 0-1 maps is flat and dim, its shape is what matters
                shown = mean / max(float(mean.max()), 1e-6)
                row.append((heatmap_rgb(shown, (160, 160)), f"{label}: mean of {d.class_counts[label]}"))
        if not d.class_counts:
            return False
        write_sheet(path, [row], tile=160, title=f"{d.name}: mean heatmap per predicted class")
        return True


def _decode(jpeg: bytes) -> NDArray[np.uint8] | None:
    if not jpeg:
        return None
    bgr = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    return None if bgr is None else np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
