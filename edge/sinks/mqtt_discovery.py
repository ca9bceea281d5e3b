"""Home Assistant MQTT discovery: the retained configs that make a camera appear in Home Assistant by itself.

Written against HA's own discovery code (homeassistant/components/mqtt/: discovery.py, schemas.py, entity.py,
sensor.py, camera.py of 2025.4 and 2026.2), which decides what is accepted:
- a discovery topic is `<prefix>/<component>/<node_id>/<object_id>/config` with node and object ids matching
  `[a-zA-Z0-9_-]+`; anything else is an "illegal discovery topic" and never appears, so a device id such as `pi.lan`
  is mapped to HA's alphabet (`pi_lan`) there and in unique ids, while the device block keeps the readable name;
- the entity id comes from `default_entity_id` (HA 2025.10 and later). `object_id` is the older key: HA warns about it
  only when it stands alone and from 2026.4 drops it silently, so it is sent alongside for older HA at no cost;
- `origin` names the publisher in HA's discovery log lines;
- HA announces itself with `online` on `homeassistant/status` whatever the discovery prefix (its default birth topic).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edge.explain.class_names import summary as class_summary
from edge.sinks.mqtt_client import MqttCounters, Outbox
from edge.sinks.mqtt_drift import drift_entity_configs
from edge.sinks.mqtt_faithfulness import faithfulness_entity_configs
from edge.sinks.mqtt_messages import STATUS_OFFLINE, STATUS_ONLINE, Topics

PRODUCT = "edge-explainer"
UNIQUE_ID_PREFIX = "edge_explainer"  # the product name in HA's alphabet, before every unique id
HA_STATUS_TOPIC = "homeassistant/status"
HA_BIRTH = b"online"
_HA_ID_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")
_ENTITY_ID_UNSAFE = re.compile(r"[^a-z0-9]+")
REPLAY_SETTLE_S = 0.5  # a prediction sent this long after a discovery reaches HA (it has subscribed by then)
REPLAY_AFTER_S = 0.8  # when to decide whether to send the last prediction again (within a second of discovery)
Message = tuple[str, bytes, int]  # (topic, payload, qos)


@dataclass(frozen=True)
class DeviceInfo:
    """What discovery and messages say about this camera's model."""

    class_names: tuple[str, ...]
    model_name: str
    model_sha256: str
    version: str


def ha_id(name: str) -> str:
    """name in the alphabet HA accepts for discovery node and object ids: [a-zA-Z0-9_-]."""
    return _HA_ID_UNSAFE.sub("_", name) or "edge"


def entity_slug(name: str) -> str:
    """name as the object part of an HA entity id (lower case a-z, 0-9 and _), e.g. `Pi-7.lan` -> `pi_7_lan`."""
    return _ENTITY_ID_UNSAFE.sub("_", name.lower()).strip("_") or "edge"


def _entity(component: str, key: str, name: str, device_id: str, **config: Any) -> tuple[str, dict[str, Any]]:
    """(component, config) of one entity: names and ids made from the device id and the entity's key."""
    slug = f"{entity_slug(device_id)}_{key}"
    return component, {
        "name": name,
        # namespaced: another publisher (or this camera under a second prefix) with the same device id cannot collide
        "unique_id": f"{UNIQUE_ID_PREFIX}_{ha_id(device_id)}_{key}",
        "default_entity_id": f"{component}.{slug}",
        "object_id": slug,  # HA before 2025.10; ignored without a warning when default_entity_id is there
        **config,
    }


def discovery_configs(*, device_id: str, topics: Topics, discovery_prefix: str, device: DeviceInfo,
                      events: str | None = None, drift: bool = False,
                      faithfulness: bool = False) -> dict[str, dict[str, Any]]:
    """Discovery topic -> retained config: the label sensor (an enum of the class names, the probabilities as
    attributes), the confidence sensor and the overlay camera, all under one device; with events (the [notify]
    thumbnail topic), also the camera showing the last event's thumbnail."""
    node = ha_id(device_id)
    class_names = device.class_names
    block = {
        "identifiers": [f"{PRODUCT}-{node}"],
        "name": f"{PRODUCT} {device_id}",
        "manufacturer": PRODUCT,
        "model": f"{device.model_name} ({class_summary(class_names, 10)})",
        "sw_version": f"{device.version}, bundle {device.model_sha256[:12]}",
    }
    common = {"device": block, "origin": {"name": PRODUCT, "sw_version": device.version},
              "availability_topic": topics.status, "payload_available": STATUS_ONLINE,
              "payload_not_available": STATUS_OFFLINE}
    entities = {
        "label": _entity("sensor", "label", "Label", device_id, icon="mdi:eye",
                         device_class="enum", options=list(class_names),
                         state_topic=topics.prediction, value_template="{{ value_json.label }}",
                         json_attributes_topic=topics.prediction,
                         json_attributes_template="{{ value_json.probabilities | tojson }}"),
        "confidence": _entity("sensor", "confidence", "Confidence", device_id, icon="mdi:percent",
                              state_topic=topics.prediction,
                              value_template="{{ (value_json.confidence * 100) | round(1) }}",
                              unit_of_measurement="%", state_class="measurement"),
        "overlay": _entity("camera", "overlay", "Overlay", device_id, topic=topics.overlay),
    }
    if events:
        entities["event"] = _entity("camera", "event", "Last event", device_id, topic=events)
    if drift:  # [drift]: the problem sensor and the alert/clear events
        for key, (component, name, config) in drift_entity_configs(topics.prefix).items():
            entities[key] = _entity(component, key, name, device_id, **config)
    if faithfulness:  # [faithfulness]: the live scores' sensor
        for key, (component, name, config) in faithfulness_entity_configs(topics.prefix).items():
            entities[key] = _entity(component, key, name, device_id, **config)
    return {f"{discovery_prefix}/{component}/{node}/{key}/config": {**config, **common}
            for key, (component, config) in entities.items()}


def entity_ids(device_id: str) -> list[str]:
    """The entity ids a new Home Assistant install gives this camera's entities (for the docs and the log)."""
    slug = entity_slug(device_id)
    return [f"sensor.{slug}_label", f"sensor.{slug}_confidence", f"camera.{slug}_overlay"]


class HomeAssistant:
    """One camera as Home Assistant sees it: its discovery configs, published again when HA announces itself, and
    the last prediction and overlay replayed shortly after each discovery (they are not retained, and HA subscribes
    to an entity's topics only once its config has arrived). No replay when every frame is published (replay=False):
    the next frame brings the state anyway, and consumers other than HA would count a duplicate."""

    def __init__(self, *, device_id: str, topics: Topics, discovery_prefix: str, birth_topic: str,
                 device: DeviceInfo, outbox: Outbox, counters: MqttCounters, connected: threading.Event,
                 client: Callable[[], Any], replay: bool = True, events: str | None = None,
                 drift: bool = False, faithfulness: bool = False) -> None:
        self.device_id = device_id
        self.birth_topic = birth_topic
        self.configs = discovery_configs(device_id=device_id, topics=topics, discovery_prefix=discovery_prefix,
                                         device=device, events=events, drift=drift,
                                         faithfulness=faithfulness)
        self._outbox = outbox
        self._counters = counters
        self._connected = connected
        self._client = client
        self._replay_on = replay
        self._last: tuple[float, list[Message]] | None = None  # when the last prediction was queued, its messages
        self._timer: threading.Timer | None = None

    def legacy_topics(self) -> list[str]:
        """Where versions that ignored HA's alphabet put the configs of a device id like `pi.lan` (HA refused them,
        but the broker kept them)."""
        node = ha_id(self.device_id)
        if node == self.device_id:
            return []
        return [topic.replace(f"/{node}/", f"/{self.device_id}/", 1) for topic in self.configs]

    def announce(self, client: Any) -> None:
        """On every connect: the configs, the old illegal ones cleared, and a watch on HA's birth topic."""
        self.publish(client)
        for topic in self.legacy_topics():
            client.publish(topic, b"", qos=1, retain=True)
        client.subscribe(self.birth_topic, qos=1)

    def publish(self, client: Any) -> None:
        for topic, payload in self.configs.items():
            client.publish(topic, json.dumps(payload), qos=1, retain=True)
        self._arm_replay()

    def on_message(self, client: Any, message: Any) -> None:
        # HA's birth message: it restarted and forgot the discovery and every state that was not retained.
        if message.topic == self.birth_topic and message.payload == HA_BIRTH:
            self.publish(client)

    def remember(self, messages: list[Message]) -> None:
        """The messages of the prediction just queued: what a replay sends."""
        self._last = (time.monotonic(), messages)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _arm_replay(self) -> None:
        if not self._replay_on:
            return
        self.cancel()
        timer = threading.Timer(REPLAY_AFTER_S, self._replay, args=(time.monotonic(),))
        timer.daemon = True
        timer.start()
        self._timer = timer

    def _replay(self, discovered_at: float) -> None:
        """Send the last prediction and overlay again, unless a newer one went out once HA had subscribed."""
        last, client = self._last, self._client()
        if last is None or client is None or not self._connected.is_set():
            return
        queued_at, messages = last
        if queued_at >= discovered_at + REPLAY_SETTLE_S:
            return
        self._outbox.flush(client, self._connected)  # anything older first, so the replay stays the latest state
        if self._outbox.send_now(client, messages):
            self._counters.replays += 1
