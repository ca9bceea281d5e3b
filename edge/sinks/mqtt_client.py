"""The MQTT sink's connection side: the paho-mqtt client and the bounded outbox that keeps the loop off the network.

paho-mqtt is imported only when a broker is configured. The outbox holds messages while the broker is away (oldest
dropped and counted) and hands them to paho only while connected; paho's own thread sends them and reconnects.
"""

from __future__ import annotations

import ssl
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

from edge.records import SinkError
from edge.safe_io import read_regular
from edge.sinks.mqtt_messages import BrokerAddress, read_password

MAX_TLS_FILE = 1 << 20  # bytes of a CA bundle, certificate or key read at most


@dataclass
class MqttCounters:
    published: int = 0  # messages of every kind handed to the client while connected
    predictions: int = 0  # prediction messages made (published or queued)
    overlays: int = 0
    dropped: int = 0  # messages dropped from the full outbox (the broker was away too long)
    skipped_overlays: int = 0  # overlays over the size cap even as a thumbnail
    replays: int = 0  # last prediction and overlay sent again for Home Assistant (after its restart, at discovery)
    connects: int = 0
    disconnects: int = 0


def import_paho() -> Any:
    try:
        import paho.mqtt.client as mqtt
    except ImportError as e:
        raise SinkError("[mqtt] needs paho-mqtt 2.x: pip install 'paho-mqtt>=2,<3'") from e
    if not hasattr(mqtt, "CallbackAPIVersion"):
        raise SinkError("[mqtt] needs paho-mqtt 2.x (found 1.x, e.g. Debian's python3-paho-mqtt): "
                        "pip install 'paho-mqtt>=2,<3' in the venv")
    return mqtt


@dataclass(frozen=True)
class ClientSettings:
    """What a paho client needs besides callbacks: who it is, how it logs in, and its last will."""

    client_id: str
    address: BrokerAddress
    password_file: str = ""
    password_env: str = ""
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    connect_timeout_s: float = 5.0
    will: tuple[str, str] | None = None  # (topic, payload), retained with QoS 1


def check_tls_files(ca_file: str, cert_file: str, key_file: str) -> None:
    """Build the TLS context paho builds from these files, so that a missing or garbage file is one line at start and
    at --check-config alike (only small regular files are read: a FIFO would block)."""
    for key, path in (("ca_file", ca_file), ("cert_file", cert_file), ("key_file", key_file)):
        if path:
            try:
                read_regular(path, MAX_TLS_FILE)
            except OSError as e:
                raise SinkError(f"[mqtt] {key} {path}: cannot read it ({e.strerror or e})") from e
    try:
        context = ssl.create_default_context(cafile=ca_file or None)
    except ssl.SSLError as e:
        raise SinkError(f"[mqtt] ca_file {ca_file}: not a PEM CA certificate file ({e.reason or e})") from e
    if cert_file:
        try:
            context.load_cert_chain(cert_file, key_file or None)
        except ssl.SSLError as e:
            raise SinkError(f"[mqtt] cert_file/key_file: not a PEM certificate and its key ({e.reason or e})") from e


def make_client(settings: ClientSettings) -> Any:
    """A paho client (MQTT 3.1.1, paho's VERSION2 callbacks) with login, TLS, last will and reconnect backoff set."""
    mqtt = import_paho()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=settings.client_id, protocol=mqtt.MQTTv311)
    if settings.address.username is not None:
        client.username_pw_set(settings.address.username, read_password(settings.password_file,
                                                                        settings.password_env))
    if settings.address.tls:
        check_tls_files(settings.ca_file, settings.cert_file, settings.key_file)
        client.tls_set(ca_certs=settings.ca_file or None, certfile=settings.cert_file or None,
                       keyfile=settings.key_file or None)
    if settings.will is not None:
        client.will_set(settings.will[0], settings.will[1], qos=1, retain=True)
    client.reconnect_delay_set(min_delay=1, max_delay=16)
    client.connect_timeout = settings.connect_timeout_s
    return client


class Outbox:
    """Messages waiting for the broker, oldest first; full, it drops the oldest and counts it. Its lock lets another
    thread (Home Assistant's replay) publish between the worker's flushes."""

    def __init__(self, size: int, counters: MqttCounters) -> None:
        self.size = size
        self.counters = counters
        self._queue: deque[tuple[str, bytes, int, bool]] = deque()  # (topic, payload, qos, retain)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._queue)

    def put(self, topic: str, payload: bytes, qos: int, *, retain: bool = False) -> None:
        with self._lock:
            if len(self._queue) >= self.size:
                self._queue.popleft()
                self.counters.dropped += 1
            self._queue.append((topic, payload, qos, retain))

    def flush(self, client: Any, connected: threading.Event) -> None:
        """Hand queued messages to paho while connected; paho's own network thread sends them."""
        with self._lock:
            while self._queue and connected.is_set():
                topic, payload, qos, retain = self._queue[0]
                info = client.publish(topic, payload, qos=qos, retain=retain)
                if info.rc != 0:  # not connected after all (the drop was just noticed): keep it for the next try
                    break
                self._queue.popleft()
                self.counters.published += 1

    def send_now(self, client: Any, messages: list[tuple[str, bytes, int]]) -> int:
        """Publish (topic, payload, qos) messages at once, not retained, if connected (else they are not worth
        keeping: the next connect replays anyway); the number handed to paho."""
        sent = 0
        with self._lock:
            for topic, payload, qos in messages:
                if client.publish(topic, payload, qos=qos).rc != 0:
                    break
                sent += 1
            self.counters.published += sent
        return sent
