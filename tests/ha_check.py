"""Home Assistant's own MQTT discovery code judging our discovery configs: run it with the Python of a venv that has
`homeassistant` installed (never the project's venv: HA pins hundreds of packages), e.g.

    python3.13 -m venv /tmp/ha && /tmp/ha/bin/pip install homeassistant
    EDGE_HA_PYTHON=/tmp/ha/bin/python pytest tests/test_mqtt.py -k home_assistant

Reads {"configs": {topic: config}, "messages": {topic: text}} on stdin (the retained configs and the last message
of each state topic, as a broker delivered them); prints, per config topic, what HA makes of it: whether the topic
is a legal discovery topic (discovery.TOPIC_MATCHER), the schema's verdict (the platform's DISCOVERY_SCHEMA and the
origin schema), the keys the schema dropped as unknown, the entity id HA derives, and the state and attributes HA's
template engine renders from the messages on the config's topics.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from typing import Any

from homeassistant.components.mqtt import camera, discovery, sensor
from homeassistant.const import __version__
from homeassistant.core import HomeAssistant
from homeassistant.helpers.template import Template

try:
    from homeassistant.components.mqtt.schemas import MQTT_ORIGIN_INFO_SCHEMA
except ImportError:  # HA before 2024.6 kept it in discovery.py
    from homeassistant.components.mqtt.discovery import MQTT_ORIGIN_INFO_SCHEMA  # type: ignore[attr-defined,no-redef]

SCHEMAS = {"sensor": sensor.DISCOVERY_SCHEMA, "camera": camera.DISCOVERY_SCHEMA}


def entity_id(component: str, config: dict[str, Any]) -> str | None:
    """The entity id a new install gets: from default_entity_id (2025.10+) or object_id, else from the name."""
    if "default_entity_id" in config:
        return f"{component}.{config['default_entity_id'].partition('.')[2].lower()}"
    if "object_id" in config:
        return f"{component}.{config['object_id'].lower()}"
    return None


def _text(template: Any) -> str | None:
    """A template's source, whether the schema left it a string or made it a Template."""
    return None if template is None else str(getattr(template, "template", template))


def render(hass: HomeAssistant, template: str | None, payload: str | None) -> str | None:
    if template is None or payload is None:
        return payload
    return str(Template(template, hass).async_render_with_possible_json_value(payload))


def judge(hass: HomeAssistant, topic: str, config: dict[str, Any], messages: dict[str, str]) -> dict[str, Any]:
    verdict: dict[str, Any] = {"topic_ok": False, "error": None}
    match = discovery.TOPIC_MATCHER.match(topic.split("/", 1)[1])
    if match is None or match.end() != len(topic.split("/", 1)[1]):
        return verdict
    verdict["topic_ok"] = True
    component = match.group("component")
    try:
        MQTT_ORIGIN_INFO_SCHEMA(config["origin"])
        valid = dict(SCHEMAS[component](dict(config, platform="mqtt")))
    except Exception as e:  # voluptuous raises several kinds; its text is the verdict
        verdict["error"] = f"{type(e).__name__}: {e}"
        return verdict
    verdict["dropped"] = sorted(set(config) - set(valid))
    verdict["entity_id"] = entity_id(component, valid)
    if component == "sensor":
        value = render(hass, _text(valid["value_template"]), messages.get(valid["state_topic"]))
        verdict["state"] = value
        if "json_attributes_topic" in valid:
            template = valid.get("json_attributes_template")
            attributes = render(hass, _text(template), messages.get(valid["json_attributes_topic"]))
            verdict["attributes"] = json.loads(attributes) if attributes else None
        verdict["options"] = valid.get("options")
    else:
        verdict["image_topic"] = valid["topic"]
    return verdict


async def main() -> int:
    data = json.load(sys.stdin)
    with tempfile.TemporaryDirectory() as config_dir:
        hass = HomeAssistant(config_dir)
        results = {topic: judge(hass, topic, config, data["messages"]) for topic, config in data["configs"].items()}
    print(json.dumps({"version": __version__, "results": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
