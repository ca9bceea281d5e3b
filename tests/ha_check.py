"""Home Assistant's own MQTT code judging the device's discovery configs and messages. It runs under the Python of the
venv scripts/ha-venv makes (HA pins hundreds of packages of its own, so never the project's venv):

    EDGE_HA_PYTHON=$(./scripts/ha-venv) pytest tests/test_home_assistant.py -k own_code

Reads {"configs": {topic: config}, "messages": {topic: [payload text, ...]}} on stdin (the retained configs and the
messages seen on each topic, as a broker delivered them) and prints, per config topic, what HA makes of it, the way
homeassistant/components/mqtt/ does on receipt:
- discovery.py: the topic against TOPIC_MATCHER, the component among SUPPORTED_COMPONENTS, abbreviations expanded,
  `origin` through MQTT_ORIGIN_INFO_SCHEMA (HA ignores the whole config when it fails);
- the platform's DISCOVERY_SCHEMA (sensor, binary_sensor, event, camera): the verdict, with the `device` block, and the
  keys it removed as unknown (REMOVE_EXTRA: dropped silently, never an error);
- the entity id: HA's init_entity_id_from_config (object_id), and, as HA 2025.10+ derives it, from default_entity_id
  (MqttEntity._init_entity_id: the part after the dot, through the same async_generate_entity_id);
- every message on the config's topics through the platform's own steps: MqttValueTemplate, a state as SensorEntity
  reports it (numeric, enum), the binary sensor's payload_on/payload_off match, the event entity's event_type check,
  and json_attributes_template into a dict filtered by MQTT_ATTRIBUTES_BLOCKED. A template that reads a key the
  message lacks makes HA log "Template variable warning": that counts as an error here.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import tempfile
from typing import Any

import voluptuous as vol
from homeassistant.components import binary_sensor as ha_binary_sensor
from homeassistant.components import camera as ha_camera
from homeassistant.components import event as ha_event
from homeassistant.components import sensor as ha_sensor
from homeassistant.components.mqtt import binary_sensor, camera, discovery, event, sensor
from homeassistant.components.mqtt.abbreviations import ABBREVIATIONS, DEVICE_ABBREVIATIONS, ORIGIN_ABBREVIATIONS
from homeassistant.components.mqtt.mixins import MQTT_ATTRIBUTES_BLOCKED, init_entity_id_from_config
from homeassistant.components.mqtt.models import MqttValueTemplate
from homeassistant.const import __version__
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity import Entity, async_generate_entity_id
from homeassistant.util.json import json_loads, json_loads_object

try:
    from homeassistant.components.mqtt.schemas import MQTT_ORIGIN_INFO_SCHEMA
except ImportError:  # HA before 2024.6 kept it in discovery.py
    from homeassistant.components.mqtt.discovery import MQTT_ORIGIN_INFO_SCHEMA

PLATFORMS: dict[str, tuple[Any, str]] = {  # component -> (its MQTT DISCOVERY_SCHEMA, its entity id format)
    "sensor": (sensor.DISCOVERY_SCHEMA, ha_sensor.ENTITY_ID_FORMAT),
    "binary_sensor": (binary_sensor.DISCOVERY_SCHEMA, ha_binary_sensor.ENTITY_ID_FORMAT),
    "event": (event.DISCOVERY_SCHEMA, ha_event.ENTITY_ID_FORMAT),
    "camera": (camera.DISCOVERY_SCHEMA, ha_camera.ENTITY_ID_FORMAT),
}
# what each platform keeps out of its json attributes besides MQTT_ATTRIBUTES_BLOCKED (MqttSensor, MqttEvent)
EXTRA_BLOCKED = {"sensor": sensor.MQTT_SENSOR_ATTRIBUTES_BLOCKED, "event": event.MQTT_EVENT_ATTRIBUTES_BLOCKED}


class RefusedError(Exception):
    """What HA does not accept, in HA's words where it has them."""


class TemplateWarnings(logging.Handler):
    """HA's template engine logs a read of a missing key ("Template variable warning") instead of raising."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append(record.getMessage())


WARNINGS = TemplateWarnings()
logging.getLogger("homeassistant.helpers.template").addHandler(WARNINGS)


def render(hass: HomeAssistant, template: Any, payload: str) -> str:
    """payload through the entity's MqttValueTemplate; a template warning or error rejects it."""
    WARNINGS.seen.clear()
    try:
        out = MqttValueTemplate(template, hass=hass).async_render_with_possible_json_value(payload)
    except Exception as e:  # TEMPLATE_ERRORS: HA logs them and drops the message
        raise RefusedError(f"template {getattr(template, 'template', template)!r}: {type(e).__name__}: {e}") from e
    if WARNINGS.seen:
        raise RefusedError(f"template {template.template!r} on {payload[:200]}: {WARNINGS.seen[0]}")
    return str(out)


def expand(topic: str, config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """discovery.py's handling of a config message before the platform sees it: (component, payload)."""
    trimmed = topic.split("/", 1)[1]
    match = discovery.TOPIC_MATCHER.match(trimmed)
    if match is None or match.end() != len(trimmed):
        raise RefusedError(f"illegal discovery topic {topic}")
    component = match.group("component")
    if component not in discovery.SUPPORTED_COMPONENTS or component not in PLATFORMS:
        raise RefusedError(f"integration {component} is not supported")
    payload = {ABBREVIATIONS.get(k, k): v for k, v in config.items()}
    if "device" in payload:
        payload["device"] = {DEVICE_ABBREVIATIONS.get(k, k): v for k, v in payload["device"].items()}
    if "origin" in payload:
        payload["origin"] = {ORIGIN_ABBREVIATIONS.get(k, k): v for k, v in payload["origin"].items()}
        try:
            MQTT_ORIGIN_INFO_SCHEMA(payload["origin"])
        except vol.Invalid as e:
            raise RefusedError(f"Unable to parse origin information: {e}") from e
    return component, dict(payload, platform="mqtt")


def entity_ids(hass: HomeAssistant, component: str, valid: dict[str, Any], raw: dict[str, Any]) -> dict[str, Any]:
    """The entity id this HA gives a new install, and the one HA 2025.10+ gives from default_entity_id."""
    fmt = PLATFORMS[component][1]
    entity = Entity()
    init_entity_id_from_config(hass, entity, valid, fmt)
    current = None
    if "default_entity_id" in raw:  # read from homeassistant/components/mqtt/entity.py (2026.2)
        current = async_generate_entity_id(fmt, raw["default_entity_id"].partition(".")[2], None, hass)
    return {"entity_id": entity.entity_id, "entity_id_current": current}


def attributes(hass: HomeAssistant, component: str, valid: dict[str, Any], payload: str) -> dict[str, Any]:
    """MqttAttributes: the (templated) message as a JSON dict, HA's blocked keys left out."""
    if (template := valid.get("json_attributes_template")) is not None:
        payload = render(hass, template, payload)
    try:
        value = json_loads(payload)
    except ValueError as e:
        raise RefusedError(f"Erroneous JSON: {payload[:200]}") from e
    if not isinstance(value, dict):
        raise RefusedError(f"JSON result was not a dictionary: {payload[:200]}")
    blocked = MQTT_ATTRIBUTES_BLOCKED | EXTRA_BLOCKED.get(component, frozenset())
    return {k: v for k, v in value.items() if k not in blocked}


def sensor_state(hass: HomeAssistant, valid: dict[str, Any], value: str) -> Any:
    """The state SensorEntity reports for value: it raises ValueError on a non-numeric value where a number is due."""
    entity = ha_sensor.SensorEntity()
    entity.hass, entity.entity_id = hass, "sensor.checked"
    entity._attr_device_class = valid.get("device_class")
    entity._attr_state_class = valid.get("state_class")
    entity._attr_native_unit_of_measurement = valid.get("unit_of_measurement")
    entity._attr_options = valid.get("options")
    entity._attr_native_value = value
    try:
        return entity.state
    except ValueError as e:
        raise RefusedError(str(e)) from e


def state_of(hass: HomeAssistant, component: str, valid: dict[str, Any], payload: str) -> Any:
    """One message on the state topic as the platform's entity takes it."""
    if component == "event":
        entity = ha_event.EventEntity()
        entity.entity_id, entity._attr_event_types = "event.checked", valid["event_types"]
        data = json_loads_object(render(hass, valid["value_template"], payload)
                                 if valid.get("value_template") is not None else payload)
        if "event_type" not in data:
            raise RefusedError(f"`event_type` missing in JSON event payload {payload[:200]}")
        try:
            entity._trigger_event(str(data.pop("event_type")), data)
        except ValueError as e:
            raise RefusedError(str(e)) from e
        return entity.state_attributes
    value = render(hass, valid["value_template"], payload) if valid.get("value_template") is not None else payload
    if component == "binary_sensor":
        if value not in (valid["payload_on"], valid["payload_off"]):
            raise RefusedError(f"No matching payload found for {value!r} (payload_on {valid['payload_on']!r}, "
                           f"payload_off {valid['payload_off']!r})")
        return "on" if value == valid["payload_on"] else "off"
    return sensor_state(hass, valid, value)


def judge(hass: HomeAssistant, topic: str, config: dict[str, Any], messages: dict[str, list[str]]) -> dict[str, Any]:
    verdict: dict[str, Any] = {"error": None}
    try:
        component, payload = expand(topic, config)
        try:
            valid = dict(PLATFORMS[component][0](payload))
        except vol.Invalid as e:
            raise RefusedError(f"{type(e).__name__}: {e}") from e
        verdict["dropped"] = sorted(set(config) - set(valid))
        verdict |= entity_ids(hass, component, valid, config)
        if "state_topic" in valid:
            seen = messages.get(valid["state_topic"], [])
            verdict["messages"] = len(seen)
            verdict["state"] = [state_of(hass, component, valid, m) for m in seen][-1] if seen else None
        if "json_attributes_topic" in valid:
            seen = messages.get(valid["json_attributes_topic"], [])
            verdict["attributes"] = [attributes(hass, component, valid, m) for m in seen][-1] if seen else None
        if component == "camera":
            verdict["image_topic"] = valid["topic"]
    except RefusedError as e:
        verdict["error"] = str(e)
    return verdict


async def main() -> int:
    data = json.load(sys.stdin)
    with tempfile.TemporaryDirectory() as config_dir:
        hass = HomeAssistant(config_dir)
        results = {topic: judge(hass, topic, config, data["messages"]) for topic, config in data["configs"].items()}
    print(json.dumps({"version": __version__, "results": results}, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
