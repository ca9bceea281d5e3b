"""[notify]: an MQTT event when a chosen class is seen (or the explanation-drift monitor raises an alert), with a
small overlay thumbnail that shows why.

Two messages per event, in this order: the thumbnail JPEG (retained) on `<prefix>/event/thumbnail`, which Home
Assistant's discovered camera `camera.<device>_event` shows, then the event JSON on `<prefix>/event` (not retained:
an automation must not fire again when it reconnects). An automation triggered by the event can attach the camera's
picture to a phone notification (docs/device.md has one). A class notifies again only after it has not been seen for
cooldown_s, so an object that lingers in view (explained again and again, or by keep-alives) gives one event; a drift
alert notifies when the monitor's state turns to alert, at most once per cooldown_s.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import cv2
import numpy as np

from edge.jpeg import encode_rgb
from edge.records import Result, SinkError
from edge.sinks.record import peak_position

Outgoing = tuple[str, bytes, int, bool]  # (topic, payload, qos, retain)
_DRIFT = "\0drift"  # the cooldown's key for drift alerts (no class name has a NUL)


def class_list(text: str) -> list[str]:
    """`person, cat` -> ['person', 'cat']; names are the model's class names, comma-separated."""
    return [name.strip() for name in text.split(",") if name.strip()]


@dataclass(frozen=True)
class NotifyConfig:
    """[notify]: MQTT events (for phone notifications) when chosen classes are seen; needs [mqtt] url."""

    classes: str = field(default="", metadata={"doc": "comma-separated class names that raise an event; empty = none"})
    min_confidence: float = field(default=0.5, metadata={"range": (0.0, 1.0), "doc": "only at or above this "
                                                                                      "probability"})
    cooldown_s: float = field(default=300.0, metadata={"range": (0.0, 604800.0), "doc": (
        "a class notifies again only after not being seen for this long (keep it above [trigger] keepalive_s)")})
    thumbnail_px: int = field(default=320, metadata={"range": (32, 4096), "doc": "longer side of the thumbnail"})
    thumbnail_quality: int = field(default=70, metadata={"range": (10, 100), "doc": "thumbnail JPEG quality"})
    drift: bool = field(default=False, metadata={"doc": "also an event when the [drift] monitor raises an alert"})


class EventNotifier:
    """Decides per explained frame whether it is an event, and makes its messages."""

    def __init__(self, config: NotifyConfig, class_names: Sequence[str], prefix: str, device_id: str, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.classes = class_list(config.classes)
        unknown = [name for name in self.classes if name not in class_names]
        if unknown:
            raise SinkError(f"[notify] classes: {', '.join(map(repr, unknown))} not among the model's classes "
                            f"({', '.join(class_names)})")
        self.topic = f"{prefix}/event"
        self.thumbnail_topic = f"{prefix}/event/thumbnail"
        self.device_id = device_id
        self._clock = clock
        self._seen: dict[str, float] = {}  # class -> clock time it was last seen (confident enough)
        self._drift_state = ""  # the drift monitor's state on the last result
        self.on = bool(self.classes) or config.drift  # anything to notify about
        self.events = 0
        self.suppressed = 0  # sightings inside a cooldown

    def check(self, result: Result) -> list[Outgoing]:
        """The event's messages (thumbnail first), or none."""
        now = self._clock()
        kind = self._class_event(result, now)
        drift = self._drift_alert(result, now)
        if kind is None and drift is None:
            return []
        self.events += 1
        thumbnail = self.thumbnail(result.overlay)
        messages: list[Outgoing] = []
        if thumbnail is not None:
            messages.append((self.thumbnail_topic, thumbnail, 1, True))
        payload = self.payload(result, thumbnail is not None)
        if kind is None:
            payload.update(event="drift", drift=drift)
        messages.append((self.topic, json.dumps(payload).encode(), 1, False))
        return messages

    def _class_event(self, result: Result, now: float) -> str | None:
        """"class" if this frame shows a chosen class, confident enough, not seen within the cooldown."""
        label = result.explanation.label
        confidence = float(result.explanation.probabilities[result.explanation.class_index])
        if label not in self.classes or confidence < self.config.min_confidence:
            return None
        last = self._seen.get(label)
        self._seen[label] = now
        if last is not None and now - last < self.config.cooldown_s:
            self.suppressed += 1
            return None
        return "class"

    def _drift_alert(self, result: Result, now: float) -> dict[str, Any] | None:
        """The drift status if the monitor's state just turned to alert (and no drift event within the cooldown)."""
        if not self.config.drift or result.drift is None:
            return None
        state = str(result.drift.get("state", ""))
        before, self._drift_state = self._drift_state, state
        if state != "alert" or before == "alert":
            return None
        last = self._seen.get(_DRIFT)
        if last is not None and now - last < self.config.cooldown_s:
            self.suppressed += 1
            return None
        self._seen[_DRIFT] = now
        return dict(result.drift)

    def publish(self, result: Result, outbox: Any) -> None:
        """Queue the event's messages, if this frame is one, on outbox (edge.sinks.mqtt_client.Outbox)."""
        for topic, data, qos, retain in self.check(result):
            outbox.put(topic, data, qos, retain=retain)

    def payload(self, result: Result, thumbnail: bool) -> dict[str, Any]:
        """The event JSON of a class event; a drift event changes "event" and adds "drift"."""
        label = result.explanation.label
        confidence = float(result.explanation.probabilities[result.explanation.class_index])
        px, py = peak_position(result.cam)
        return {
            "device": self.device_id,
            "event": "class",
            "class": label,
            "confidence": round(confidence, 4),
            "time": datetime.fromtimestamp(result.frame.timestamp, UTC).isoformat(timespec="milliseconds"),
            "frame": result.frame.index,
            "top": [{"label": name, "p": round(p, 4)} for name, p in result.top],
            "peak": {"x": round(px, 4), "y": round(py, 4)},  # where the heatmap is hottest, fractions of the frame
            "thumbnail_topic": self.thumbnail_topic if thumbnail else None,
        }

    def thumbnail(self, overlay: np.ndarray[Any, np.dtype[np.uint8]]) -> bytes | None:
        """The (H, W, 3) uint8 RGB overlay shrunk to thumbnail_px on its longer side, as JPEG."""
        height, width = overlay.shape[:2]
        scale = min(1.0, self.config.thumbnail_px / max(height, width))
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            overlay = np.asarray(cv2.resize(overlay, size, interpolation=cv2.INTER_AREA), np.uint8)
        return encode_rgb(overlay, self.config.thumbnail_quality)
