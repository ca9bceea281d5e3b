"""[mqtt]: the broker, what to publish and how often (the policy keys as in [log])."""

from __future__ import annotations

from dataclasses import dataclass, field

from edge.sinks.mqtt_discovery import HA_STATUS_TOPIC
from edge.sinks.mqtt_messages import short_mqtt_text, topic_part
from edge.sinks.record import PolicyConfig


@dataclass(frozen=True)
class MqttConfig(PolicyConfig):
    """[mqtt]: the broker and what to publish; the policy keys every_s, on_change, above, every_frame as in [log]."""

    url: str = field(default="", metadata={"doc": "mqtt://[user@]host[:port] or mqtts://...; empty = no MQTT"})
    password_file: str = field(default="", metadata={"doc": "file whose first line is the password"})
    password_env: str = field(default="EDGE_MQTT_PASSWORD", metadata={
        "doc": "environment variable holding the password (if no password_file)"})
    ca_file: str = field(default="", metadata={"doc": "mqtts: CA certificate file; empty = system CAs"})
    cert_file: str = field(default="", metadata={"doc": "mqtts: client certificate (PEM), optional"})
    key_file: str = field(default="", metadata={"doc": "mqtts: client key (PEM), with cert_file"})
    device_id: str = field(default="", metadata={"doc": "this camera's name; empty = the host name",
                                                 "check": short_mqtt_text})
    client_id: str = field(default="", metadata={"doc": "MQTT client id; empty = edge-explainer-<device_id>",
                                                 "check": short_mqtt_text})
    prefix: str = field(default="", metadata={"doc": "topic prefix; empty = edge-explainer/<device_id>",
                                              "check": topic_part})
    qos: int = field(default=0, metadata={"range": (0, 2), "doc": "QoS of prediction/overlay messages"})
    keepalive: int = field(default=30, metadata={"range": (5, 3600), "doc": "keepalive seconds"})
    overlay: bool = field(default=True, metadata={"doc": "publish the overlay JPEG with each prediction"})
    overlay_quality: int = field(default=80, metadata={"range": (10, 100), "doc": "overlay JPEG quality"})
    overlay_max_kb: int = field(default=256, metadata={"range": (4, 100_000), "doc": "overlay size cap (smaller: "
                                                                                      "lower quality, then halved)"})
    heatmap_size: int = field(default=8, metadata={"range": (2, 64), "doc": "side of the small heatmap in messages"})
    stats_every_s: float = field(default=5.0, metadata={"range": (0.5, 3600.0), "doc": "stats message period"})
    discovery: bool = field(default=True, metadata={"doc": "publish Home Assistant discovery configs"})
    discovery_prefix: str = field(default="homeassistant", metadata={"doc": "Home Assistant discovery prefix",
                                                                     "check": topic_part})
    ha_status_topic: str = field(default=HA_STATUS_TOPIC, metadata={
        "doc": "Home Assistant's birth topic (discovery and the last state are re-sent when it says online)",
        "check": topic_part})
    queue_size: int = field(default=256, metadata={
        "range": (1, 1_000_000), "doc": "outgoing messages kept while the broker is away"})
    connect_timeout_s: float = field(default=5.0, metadata={"range": (0.1, 120.0), "doc": "start-up wait for "
                                                                                         "the broker"})
    required: bool = field(default=False, metadata={"doc": "exit if the broker is unreachable at start-up"})
