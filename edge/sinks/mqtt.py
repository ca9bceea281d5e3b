"""MQTT: every selected explanation to a broker (Mosquitto, EMQX, HiveMQ), the way frigate and Home Assistant do it.

Topics under `edge-explainer/<device-id>` (docs/fleet.md): status, prediction, overlay, stats, event ([notify],
edge.sinks.mqtt_notify), and Home Assistant discovery configs (edge.sinks.mqtt_discovery). The messages are built in
edge.sinks.mqtt_messages, the client and outbox live in edge.sinks.mqtt_client; this module decides what to send when.

The loop never waits for the network: this sink runs on a SinkWorker thread, and its messages go through a bounded
outbox (oldest dropped and counted) that is handed to paho only while connected. paho reconnects with backoff on its
own thread. A refused login at start-up is an error (retrying cannot fix a password); an unreachable broker is
logged once and retried in the background while classifying and disk logging go on (unless [mqtt] required).

Predictions are not retained: shortly after each discovery the last one is sent again for Home Assistant, which
subscribes only then (edge.sinks.mqtt_discovery.HomeAssistant says when and why).
"""

from __future__ import annotations

import contextlib
import json
import logging
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

from edge.records import Result, SinkError
from edge.sinks.mqtt_client import ClientSettings, MqttCounters, Outbox, make_client
from edge.sinks.mqtt_config import MqttConfig
from edge.sinks.mqtt_discovery import DeviceInfo, HomeAssistant, entity_ids
from edge.sinks.mqtt_drift import DriftPublisher
from edge.sinks.mqtt_faithfulness import FaithfulnessPublisher
from edge.sinks.mqtt_messages import (
    STATUS_OFFLINE,
    STATUS_ONLINE,
    BrokerAddress,
    Topics,
    cpu_temperature_c,
    default_device_id,
    overlay_jpeg,
    parse_broker_url,
    prediction_payload,
    short_mqtt_text,
    topic_part,
    topic_safe,
)
from edge.sinks.mqtt_notify import EventNotifier, NotifyConfig
from edge.sinks.record import LogPolicy

_LOGGER = logging.getLogger(__name__)
__all__ = ["DeviceInfo", "MqttConfig", "MqttCounters", "MqttSink"]  # DeviceInfo, MqttConfig, MqttCounters: re-exported


class MqttSink:
    """Publishes status, predictions, overlays, stats, events and discovery; run it in a SinkWorker."""

    name = "mqtt"

    def __init__(self, config: MqttConfig, device: DeviceInfo, *, every_frame_default: bool = False,
                 notify: NotifyConfig | None = None, extra_stats: Callable[[], dict[str, Any]] | None = None,
                 drift: bool = False, faithfulness: bool = False) -> None:
        if not config.url:
            raise SinkError("[mqtt] url is empty: give a broker (--mqtt mqtt://host)")
        checks = {"prefix": topic_part, "discovery_prefix": topic_part, "ha_status_topic": topic_part,
                  "client_id": short_mqtt_text, "device_id": short_mqtt_text}
        for key, check in checks.items():  # configs built in code skip load_config
            try:
                check(getattr(config, key))
            except ValueError as e:
                raise SinkError(f"[mqtt] {key}: {e}") from e
        self.config = config
        self.address: BrokerAddress = parse_broker_url(config.url)
        self.device = device
        self.device_id = topic_safe(config.device_id) if config.device_id else default_device_id()
        self.topics = Topics(config.prefix.rstrip("/") or f"edge-explainer/{self.device_id}")
        self.client_id = config.client_id or f"edge-explainer-{self.device_id}"
        self.policy = LogPolicy(config, every_frame_default=every_frame_default)
        self.counters = MqttCounters()
        self._outbox = Outbox(config.queue_size, self.counters)
        self._connected, self._connack = threading.Event(), threading.Event()
        self._refused: str | None = None
        self._client: Any = None
        self._started, self._next_stats = time.monotonic(), 0.0
        self._last: Result | None = None
        self._extra_stats = extra_stats or (lambda: {"cpu_temp_c": cpu_temperature_c()})  # the service's heat, ...
        self.events = EventNotifier(notify or NotifyConfig(), device.class_names, self.topics.prefix, self.device_id)
        self.home_assistant = HomeAssistant(
            device_id=self.device_id, topics=self.topics, discovery_prefix=config.discovery_prefix,
            birth_topic=config.ha_status_topic, device=device, outbox=self._outbox, counters=self.counters,
            connected=self._connected, client=lambda: None if self._closing else self._client,
            replay=not self.policy.every_frame, events=self.events.thumbnail_topic if self.events.on else None,
            drift=drift, faithfulness=faithfulness)
        self.drift = DriftPublisher(self.topics.prefix, config.stats_every_s) if drift else None
        self.faithfulness = FaithfulnessPublisher(self.topics.prefix) if faithfulness else None
        self._closing = False  # our own disconnect at close() is not a lost connection
        self._announce = True  # publish status and discovery on connect (not when connecting only to forget)

    def _make_client(self, *, client_id: str, will: bool) -> Any:
        cfg = self.config
        client = make_client(ClientSettings(
            client_id=client_id, address=self.address, password_file=cfg.password_file,
            password_env=cfg.password_env, ca_file=cfg.ca_file, cert_file=cfg.cert_file, key_file=cfg.key_file,
            connect_timeout_s=cfg.connect_timeout_s, will=(self.topics.status, STATUS_OFFLINE) if will else None))
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def open(self) -> None:
        self._client = self._make_client(client_id=self.client_id, will=True)
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
        elif self.config.discovery:
            _LOGGER.info("MQTT: Home Assistant entities %s", ", ".join(entity_ids(self.device_id)))

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
            self.home_assistant.announce(client)
        self._connected.set()
        self._connack.set()

    def _on_disconnect(self, _client: Any, _userdata: Any, _flags: Any, reason_code: Any, _props: Any) -> None:
        if self._connected.is_set() and self._client is not None and not self._closing:
            self.counters.disconnects += 1
            _LOGGER.warning("MQTT broker %s: connection lost (%s); queueing up to %d messages, reconnecting",
                            self.address, reason_code, self.config.queue_size)
        self._connected.clear()

    def _on_message(self, client: Any, _userdata: Any, message: Any) -> None:
        self.home_assistant.on_message(client, message)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()
    def handle(self, result: Result) -> None:
        self._last = result
        if self.policy.should_log(result):
            self._queue_prediction(result)
        self.events.publish(result, self._outbox)
        if self.drift is not None:
            self.drift.publish(result, self._outbox)
        if self.faithfulness is not None:
            self.faithfulness.publish(result, self._outbox)
        now = time.monotonic()
        if now >= self._next_stats:
            self._next_stats = now + self.config.stats_every_s
            self._outbox.put(self.topics.stats, json.dumps(self.stats()).encode(), 0, retain=True)
        self._outbox.flush(self._client, self._connected)

    def _queue_prediction(self, result: Result) -> None:
        cfg = self.config
        payload = prediction_payload(result, device_id=self.device_id, heatmap_size=cfg.heatmap_size)
        messages = [(self.topics.prediction, payload, cfg.qos)]
        self.counters.predictions += 1
        if cfg.overlay:
            jpeg = overlay_jpeg(result.overlay, quality=cfg.overlay_quality, max_bytes=cfg.overlay_max_kb * 1024)
            if jpeg is None:
                self.counters.skipped_overlays += 1
            else:
                messages.append((self.topics.overlay, jpeg, cfg.qos))
                self.counters.overlays += 1
        for topic, data, qos in messages:
            self._outbox.put(topic, data, qos)
        self.home_assistant.remember(messages)

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
            "events": self.events.events,
            "model_sha256": self.device.model_sha256,
            **self._extra_stats(),
        }

    def close(self) -> None:
        if self._client is None:
            return
        self._closing = True
        self.home_assistant.cancel()
        if self._last is not None:  # a final stats message, so the fleet view has the end figures
            self._outbox.put(self.topics.stats, json.dumps(self.stats()).encode(), 0, retain=True)
        self._outbox.flush(self._client, self._connected)
        left = len(self._outbox)
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
        """--mqtt-forget: remove this device's discovery configs and retained status/stats from the broker.

        It connects under a client id of its own: with the camera's, the broker would drop the running camera, which
        would reconnect and publish its configs again."""
        self._announce = False
        client = self._client = self._make_client(client_id=f"{self.client_id}-forget", will=False)
        try:
            client.connect(self.address.host, self.address.port, keepalive=self.config.keepalive)
        except OSError as e:
            raise SinkError(f"MQTT broker {self.address} unreachable ({e.strerror or e})") from e
        client.loop_start()
        if not self._connack.wait(self.config.connect_timeout_s) or self._refused:
            client.loop_stop()
            raise SinkError(f"MQTT broker {self.address}: {self._refused or 'no answer'}")
        ha = self.home_assistant
        topics = [*ha.configs, *ha.legacy_topics(), self.topics.status, self.topics.stats, self.events.thumbnail_topic,
                  *([self.drift.state_topic] if self.drift else []),
                  *([self.faithfulness.topic] if self.faithfulness else [])]
        infos = [client.publish(topic, b"", qos=1, retain=True) for topic in topics]
        for info in infos:
            info.wait_for_publish(timeout=5.0)
        client.disconnect()
        client.loop_stop()
        self._client = None
        _LOGGER.info("MQTT %s: removed %d retained messages of device %s", self.address, len(topics), self.device_id)
        return len(topics)
