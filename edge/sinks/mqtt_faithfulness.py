"""[faithfulness] over MQTT: the last live scores on a retained topic, and Home Assistant's sensor of them (the
insertion AUC as its state, or the confidence change when curves are off; every score as attributes)."""

from __future__ import annotations

import json
from typing import Any

from edge.records import Result
from edge.sinks.mqtt_client import Outbox


def faithfulness_topic(prefix: str) -> str:
    return f"{prefix}/faithfulness"


def faithfulness_entity_configs(prefix: str) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """key -> (component, name, config) of the Home Assistant sensor."""
    topic = faithfulness_topic(prefix)
    return {"faithfulness": ("sensor", "Heatmap faithfulness", {
        "state_topic": topic, "state_class": "measurement", "icon": "mdi:map-check",
        "value_template": "{{ value_json.insertion_auc | default(value_json.confidence_change) }}",
        "json_attributes_topic": topic})}


class FaithfulnessPublisher:
    """Publishes each frame's scores once, retained, with that frame's result (they are rare: every N-th frame); a
    frame whose scores were skipped leaves the last ones standing."""

    def __init__(self, prefix: str) -> None:
        self.topic = faithfulness_topic(prefix)

    def publish(self, result: Result, outbox: Outbox) -> None:
        scores = result.faithfulness
        if scores is not None and "skipped" not in scores:
            payload = scores | {"time": result.frame.timestamp}
            outbox.put(self.topic, json.dumps(payload).encode(), 1, retain=True)
