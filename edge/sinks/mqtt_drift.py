"""The drift monitor over MQTT: a retained state topic (Home Assistant's binary_sensor, device_class problem, with the
class, distance and cause as attributes) and an event topic (HA's event entity) for each alert and clearing."""

from __future__ import annotations

import json
import time
from typing import Any

from edge.records import Result
from edge.sinks.mqtt_client import Outbox

EVENT_TYPES = ("alert", "clear")


def drift_topics(prefix: str) -> tuple[str, str]:
    """(retained state topic, event topic) under a device's prefix."""
    return f"{prefix}/drift", f"{prefix}/drift/event"


def drift_entity_configs(prefix: str) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """key -> (component, name, config) of the two Home Assistant entities."""
    state, event = drift_topics(prefix)
    return {
        "drift": ("binary_sensor", "Explanation drift", {
            "device_class": "problem", "state_topic": state,
            "value_template": "{{ 'ON' if value_json.state == 'alert' else 'OFF' }}",
            "json_attributes_topic": state}),
        "drift_event": ("event", "Drift", {"state_topic": event, "event_types": list(EVENT_TYPES)}),
    }


class DriftPublisher:
    """Publishes the state when it changes (and its distance at most every `every_s`), and each event once."""

    def __init__(self, prefix: str, every_s: float) -> None:
        self.state_topic, self.event_topic = drift_topics(prefix)
        self.every_s = every_s
        self._last: tuple[Any, ...] | None = None
        self._next = 0.0

    def publish(self, result: Result, outbox: Outbox) -> None:
        drift = result.drift
        if drift is None:
            return
        status = {k: v for k, v in drift.items() if k not in ("events", "event")}
        key = tuple(status.get(k) for k in ("state", "kind", "class", "cause", "input"))
        now = time.monotonic()
        if key != self._last or now >= self._next:
            self._last, self._next = key, now + self.every_s
            outbox.put(self.state_topic, json.dumps(status | {"time": result.frame.timestamp}).encode(), 1,
                       retain=True)
        for event in drift.get("events", ()):
            payload = {"event_type": event["event"], "time": result.frame.timestamp,
                       **{k: v for k, v in event.items() if k != "event"}}
            outbox.put(self.event_topic, json.dumps(payload).encode(), 1)
