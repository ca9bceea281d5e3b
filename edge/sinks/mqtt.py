"""MQTT: every selected explanation to a broker (Mosquitto, EMQX, HiveMQ), the way frigate and Home Assistant do it.

Topics under `edge-explainer/<device-id>`: `status` (online/offline, retained, offline is the last will), `prediction`
(JSON per logged frame), `overlay` (JPEG bytes), `stats` (retained, every few seconds), plus Home Assistant discovery
configs. paho-mqtt is imported only when a broker is configured.

The loop never waits for the network: this sink runs on a SinkWorker thread, and its messages go through a bounded
outbox (oldest dropped and counted) that is handed to paho only while connected. paho reconnects with backoff on its
own thread. A refused login at start-up is an error (retrying cannot fix a password); an unreachable broker is
logged once and retried in the background while classifying and disk logging go on (unless [mqtt] required).
"""

from __future__ import annotations

import contextlib
import json
import logging
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from edge.sinks.base import Result, SinkError
from edge.sinks.mqtt_messages import (
    STATUS_OFFLINE,
    STATUS_ONLINE,
    BrokerAddress,
    Topics,
    cpu_temperature_c,
    default_device_id,
    discovery_configs,
    overlay_jpeg,
    parse_broker_url,
    prediction_payload,
    read_password,
    topic_safe,
)
from edge.sinks.record import LogPolicy, PolicyConfig

_LOGGER = logging.getLogger(__name__)


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
    device_id: str = field(default="", metadata={"doc": "this camera's name; empty = the host name"})
    client_id: str = field(default="", metadata={"doc": "MQTT client id; empty = edge-explainer-<device_id>"})
    prefix: str = field(default="", metadata={"doc": "topic prefix; empty = edge-explainer/<device_id>"})
    qos: int = field(default=0, metadata={"range": (0, 2), "doc": "QoS of prediction/overlay messages"})
    keepalive: int = field(default=30, metadata={"range": (5, 3600), "doc": "keepalive seconds"})
    overlay: bool = field(default=True, metadata={"doc": "publish the overlay JPEG with each prediction"})
    overlay_quality: int = field(default=80, metadata={"range": (10, 100), "doc": "overlay JPEG quality"})
    overlay_max_kb: int = field(default=256, metadata={"range": (4, 100_000), "doc": "overlay size cap (smaller: "
                                                                                      "lower quality, then halved)"})
    heatmap_size: int = field(default=8, metadata={"range": (2, 64), "doc": "side of the small heatmap in messages"})
    stats_every_s: float = field(default=5.0, metadata={"range": (0.5, 3600.0), "doc": "stats message period"})
    discovery: bool = field(default=True, metadata={"doc": "publish Home Assistant discovery configs"})
    discovery_prefix: str = field(default="homeassistant", metadata={"doc": "Home Assistant discovery prefix"})
    queue_size: int = field(default=256, metadata={"range": (1, 1_000_000), "doc": "outgoing messages kept while "
                                                                                     "the broker is away"})
    connect_timeout_s: float = field(default=5.0, metadata={"range": (0.1, 120.0), "doc": "start-up wait for "
                                                                                         "the broker"})
    required: bool = field(default=False, metadata={"doc": "exit if the broker is unreachable at start-up"})


@dataclass(frozen=True)
class DeviceInfo:
    """What discovery and messages say about this camera's model."""

    class_names: tuple[str, ...]
    model_name: str
    model_sha256: str
    version: str


@dataclass
class MqttCounters:
    published: int = 0  # messages of every kind handed to the client while connected
    predictions: int = 0  # prediction messages made (published or queued)
    overlays: int = 0
    dropped: int = 0  # messages dropped from the full outbox (the broker was away too long)
    skipped_overlays: int = 0  # overlays over the size cap even as a thumbnail
    connects: int = 0
    disconnects: int = 0


def _import_paho() -> Any:
    try:
        import paho.mqtt.client as mqtt
    except ImportError as e:
        raise SinkError("[mqtt] needs paho-mqtt 2.x: pip install 'paho-mqtt>=2,<3'") from e
    if not hasattr(mqtt, "CallbackAPIVersion"):
        raise SinkError("[mqtt] needs paho-mqtt 2.x (found 1.x, e.g. Debian's python3-paho-mqtt): "
                        "pip install 'paho-mqtt>=2,<3' in the venv")
    return mqtt


class MqttSink:
    """Publishes status, predictions, overlays, stats and discovery; run it in a SinkWorker."""

    name = "mqtt"

    def __init__(self, config: MqttConfig, device: DeviceInfo, *, every_frame_default: bool = False) -> None:
        if not config.url:
            raise SinkError("[mqtt] url is empty: give a broker (--mqtt mqtt://host)")
        self.config = config
        self.address: BrokerAddress = parse_broker_url(config.url)
        self.device = device
        self.device_id = topic_safe(config.device_id) if config.device_id else default_device_id()
        self.topics = Topics(config.prefix.rstrip("/") or f"edge-explainer/{self.device_id}")
        self.policy = LogPolicy(config, every_frame_default=every_frame_default)
        self.counters = MqttCounters()
        self._outbox: deque[tuple[str, bytes, int, bool]] = deque()  # (topic, payload, qos, retain), oldest first
        self._connected = threading.Event()
        self._connack = threading.Event()
        self._refused: str | None = None
        self._client: Any = None
        self._started = time.monotonic()
        self._next_stats = 0.0
        self._last: Result | None = None
        self._closing = False  # our own disconnect at close() is not a lost connection
        self._announce = True  # publish status and discovery on connect (not when connecting only to forget)

    # -- connection -------------------------------------------------------------------------------------------

    def _make_client(self, *, will: bool) -> Any:
        mqtt = _import_paho()
        client_id = self.config.client_id or f"edge-explainer-{self.device_id}"
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
        if self.address.username is not None:
            client.username_pw_set(self.address.username,
                                   read_password(self.config.password_file, self.config.password_env))
        if self.address.tls:
            client.tls_set(ca_certs=self.config.ca_file or None, certfile=self.config.cert_file or None,
                           keyfile=self.config.key_file or None)
        if will:
            client.will_set(self.topics.status, STATUS_OFFLINE, qos=1, retain=True)
        client.reconnect_delay_set(min_delay=1, max_delay=16)
        client.connect_timeout = self.config.connect_timeout_s
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def open(self) -> None:
        self._client = self._make_client(will=True)
        self._started = time.monotonic()
        try:
            self._client.connect(self.address.host, self.address.port, keepalive=self.config.keepalive)
        except (OSError, ValueError) as e:
            reason = getattr(e, "strerror", None) or str(e) or type(e).__name__
            if isinstance(e, ssl.SSLError):
                # Retried all the same: a Pi has no clock battery, and before network time every certificate
                # looks not yet valid.
                problem = (f"TLS failed ({reason}); check [mqtt] ca_file and the clock")
            else:
                problem = f"unreachable ({reason})"
            if self.config.required:
                raise SinkError(f"MQTT broker {self.address} {problem}") from e
            _LOGGER.error("MQTT broker %s %s: classifying and logging go on; retrying in the background",
                          self.address, problem)
            self._client.connect_async(self.address.host, self.address.port, keepalive=self.config.keepalive)
            self._client.loop_start()
            return
        self._client.loop_start()
        if not self._connack.wait(self.config.connect_timeout_s):
            _LOGGER.warning("MQTT broker %s: no answer within %.0f s; going on, retrying in the background",
                            self.address, self.config.connect_timeout_s)
        elif self._refused is not None:
            self._client.loop_stop()
            who = f" as {self.address.username!r}" if self.address.username else ""
            raise SinkError(f"MQTT broker {self.address} refused the login{who}: {self._refused} "
                            "(check the user name and [mqtt] password_file / password_env)")

    def _on_connect(self, client: Any, _userdata: Any, _flags: Any, reason_code: Any, _properties: Any) -> None:
        if reason_code.is_failure:
            self._refused = str(reason_code)
            if self._connack.is_set():  # a later refusal (password changed on the broker): say so, keep retrying
                _LOGGER.error("MQTT broker %s refused the login: %s", self.address, reason_code)
            self._connack.set()
            return
        self.counters.connects += 1
        if not self._announce:
            self._connack.set()
            return
        if self.counters.connects > 1:
            _LOGGER.info("MQTT broker %s: connected again", self.address)
        # Retained state is (re)published on every connect: a restarted broker without persistence has lost it.
        client.publish(self.topics.status, STATUS_ONLINE, qos=1, retain=True)
        if self.config.discovery:
            self._publish_discovery(client)
            client.subscribe(f"{self.config.discovery_prefix}/status", qos=1)
        self._connected.set()
        self._connack.set()

    def _on_disconnect(self, _client: Any, _userdata: Any, _flags: Any, reason_code: Any, _props: Any) -> None:
        if self._connected.is_set() and self._client is not None and not self._closing:
            self.counters.disconnects += 1
            _LOGGER.warning("MQTT broker %s: connection lost (%s); queueing up to %d messages, reconnecting",
                            self.address, reason_code, self.config.queue_size)
        self._connected.clear()

    def _on_message(self, client: Any, _userdata: Any, message: Any) -> None:
        # Home Assistant's birth message: it restarted and forgot non-retained state; send discovery again.
        if message.topic == f"{self.config.discovery_prefix}/status" and message.payload == b"online":
            self._publish_discovery(client)

    def _publish_discovery(self, client: Any) -> None:
        for topic, payload in self._discovery().items():
            client.publish(topic, json.dumps(payload), qos=1, retain=True)

    def _discovery(self) -> dict[str, dict[str, Any]]:
        return discovery_configs(device_id=self.device_id, topics=self.topics,
                                 discovery_prefix=self.config.discovery_prefix, class_names=self.device.class_names,
                                 model_name=self.device.model_name, model_sha256=self.device.model_sha256,
                                 version=self.device.version)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    # -- messages ---------------------------------------------------------------------------------------------

    def handle(self, result: Result) -> None:
        self._last = result
        if self.policy.should_log(result):
            cfg = self.config
            self._queue(self.topics.prediction,
                        prediction_payload(result, device_id=self.device_id, heatmap_size=cfg.heatmap_size), cfg.qos)
            self.counters.predictions += 1
            if cfg.overlay:
                jpeg = overlay_jpeg(result.overlay, quality=cfg.overlay_quality, max_bytes=cfg.overlay_max_kb * 1024)
                if jpeg is None:
                    self.counters.skipped_overlays += 1
                else:
                    self._queue(self.topics.overlay, jpeg, cfg.qos)
                    self.counters.overlays += 1
        now = time.monotonic()
        if now >= self._next_stats:
            self._next_stats = now + self.config.stats_every_s
            self._queue(self.topics.stats, json.dumps(self.stats()).encode(), 0, retain=True)
        self._flush()

    def stats(self) -> dict[str, Any]:
        """The `stats` message: rates, drops (capture and MQTT), uptime, temperature."""
        last = self._last
        c = self.counters
        return {
            "device": self.device_id,
            "time": time.time(),
            "uptime_s": round(time.monotonic() - self._started, 1),
            "fps": round(last.fps, 2) if last else 0.0,
            "frames": last.frame.index + 1 if last else 0,
            "frames_dropped": last.dropped if last else 0,
            "predictions": c.predictions,
            "overlays": c.overlays,
            "published": c.published,
            "mqtt_dropped": c.dropped,
            "reconnects": max(0, c.connects - 1),
            "cpu_temp_c": cpu_temperature_c(),
            "model_sha256": self.device.model_sha256,
        }

    def _queue(self, topic: str, payload: bytes, qos: int, *, retain: bool = False) -> None:
        if len(self._outbox) >= self.config.queue_size:
            self._outbox.popleft()
            self.counters.dropped += 1
        self._outbox.append((topic, payload, qos, retain))

    def _flush(self) -> None:
        """Hand queued messages to paho while connected; paho's own network thread sends them."""
        while self._outbox and self._connected.is_set():
            topic, payload, qos, retain = self._outbox[0]
            info = self._client.publish(topic, payload, qos=qos, retain=retain)
            if info.rc != 0:  # not connected after all (the drop was just noticed): keep it for the next try
                break
            self._outbox.popleft()
            self.counters.published += 1

    def close(self) -> None:
        if self._client is None:
            return
        if self._last is not None:  # a final stats message, so the fleet view has the end figures
            self._queue(self.topics.stats, json.dumps(self.stats()).encode(), 0, retain=True)
        self._flush()
        left = len(self._outbox)
        self._closing = True
        if self._connected.is_set():
            info = self._client.publish(self.topics.status, STATUS_OFFLINE, qos=1, retain=True)
            with contextlib.suppress(RuntimeError):  # the connection went away: the last will says offline instead
                info.wait_for_publish(timeout=2.0)
            self._client.disconnect()
        self._client.loop_stop()
        c = self.counters
        _LOGGER.info("MQTT %s: %d predictions, %d overlays; %d messages published, %d dropped while the broker was "
                     "away%s", self.address, c.predictions, c.overlays, c.published, c.dropped + left,
                     f" ({left} still queued at exit)" if left else "")
        self._client = None

    def forget(self) -> int:
        """--mqtt-forget: remove this device's discovery configs and retained status/stats from the broker."""
        self._announce = False
        client = self._client = self._make_client(will=False)
        try:
            client.connect(self.address.host, self.address.port, keepalive=self.config.keepalive)
        except OSError as e:
            raise SinkError(f"MQTT broker {self.address} unreachable ({e.strerror or e})") from e
        client.loop_start()
        if not self._connack.wait(self.config.connect_timeout_s) or self._refused:
            client.loop_stop()
            raise SinkError(f"MQTT broker {self.address}: {self._refused or 'no answer'}")
        topics = [*self._discovery(), self.topics.status, self.topics.stats]
        infos = [client.publish(topic, b"", qos=1, retain=True) for topic in topics]
        for info in infos:
            info.wait_for_publish(timeout=5.0)
        client.disconnect()
        client.loop_stop()
        self._client = None
        _LOGGER.info("MQTT %s: removed %d retained messages of device %s", self.address, len(topics), self.device_id)
        return len(topics)
