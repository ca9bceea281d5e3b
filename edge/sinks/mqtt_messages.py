"""What the MQTT sink publishes, as plain data: the broker URL, topics, payloads and Home Assistant discovery configs.

Kept apart from the network client (edge.sinks.mqtt) so every message can be built and checked without a broker.
"""

from __future__ import annotations

import json
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import cv2
import numpy as np
from numpy.typing import NDArray

from edge.jpeg import encode_bgr
from edge.sinks.base import Result, SinkError
from edge.sinks.record import make_record

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
STATUS_ONLINE = "online"
STATUS_OFFLINE = "offline"
_TOPIC_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True)
class BrokerAddress:
    """mqtt://[user@]host[:port] or mqtts://... parsed; never holds a password (that comes from a file or env)."""

    scheme: str
    host: str
    port: int
    username: str | None

    @property
    def tls(self) -> bool:
        return self.scheme == "mqtts"

    def __str__(self) -> str:
        user = f"{self.username}@" if self.username else ""
        return f"{self.scheme}://{user}{self.host}:{self.port}"


def parse_broker_url(url: str) -> BrokerAddress:
    """The broker address, or SinkError naming what is wrong (a password in the URL is refused: ps would show it)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise SinkError(f"[mqtt] url {url!r}: {e}") from e
    if parts.scheme not in DEFAULT_PORTS:
        raise SinkError(f"[mqtt] url {url!r}: expected mqtt://[user@]host[:port] or mqtts://...")
    if not parts.hostname:
        raise SinkError(f"[mqtt] url {url!r}: no host name")
    if parts.password is not None:
        raise SinkError("[mqtt] url: do not put the password in the URL (it shows in ps and logs); "
                        "use [mqtt] password_file or password_env")
    if parts.path not in ("", "/") or parts.query:
        raise SinkError(f"[mqtt] url {url!r}: a broker URL has no path or query")
    return BrokerAddress(parts.scheme, parts.hostname, port or DEFAULT_PORTS[parts.scheme], parts.username or None)


def read_password(password_file: str, password_env: str) -> str | None:
    """The password from the file (first line) if set, else from the environment variable if set, else None."""
    if password_file:
        try:
            lines = Path(password_file).read_text(encoding="utf-8").splitlines()
        except OSError as e:
            raise SinkError(f"[mqtt] password_file {password_file}: cannot read it ({e.strerror or e})") from e
        return lines[0] if lines else ""
    if password_env:
        return os.environ.get(password_env)
    return None


def topic_safe(name: str) -> str:
    """A device id usable as one MQTT topic level and as a Home Assistant object id (no /, +, #, spaces)."""
    safe = _TOPIC_UNSAFE.sub("_", name).strip("_")
    return safe or "edge"


def default_device_id() -> str:
    return topic_safe(socket.gethostname())


@dataclass(frozen=True)
class Topics:
    """Every topic one device publishes under its prefix."""

    prefix: str

    @property
    def status(self) -> str:
        return f"{self.prefix}/status"

    @property
    def prediction(self) -> str:
        return f"{self.prefix}/prediction"

    @property
    def overlay(self) -> str:
        return f"{self.prefix}/overlay"

    @property
    def stats(self) -> str:
        return f"{self.prefix}/stats"


def small_heatmap(cam: NDArray[np.float32], size: int) -> list[list[float]]:
    """The drawn map averaged down to (size, size), values 0-1 rounded to 3 places: where the model looked, in a few
    hundred bytes, so a central place can aggregate it over frames and devices."""
    small = cv2.resize(np.asarray(cam, np.float32), (size, size), interpolation=cv2.INTER_AREA)  # (size, size) f32
    return np.round(np.clip(small, 0.0, 1.0), 3).tolist()


def prediction_payload(result: Result, *, device_id: str, heatmap_size: int) -> bytes:
    """The `prediction` message: the disk log's record plus the device id and a small heatmap."""
    record = make_record(result)
    record["device"] = device_id
    record["heatmap"] = small_heatmap(result.cam, heatmap_size)
    return json.dumps(record, separators=(",", ":")).encode()


def overlay_jpeg(overlay: NDArray[np.uint8], *, quality: int, max_bytes: int) -> bytes | None:
    """The (H, W, 3) RGB overlay as JPEG, at full size if it fits max_bytes, else at lower quality, then halved
    sizes; None if even a thumbnail does not fit (the message is then skipped, not truncated)."""
    bgr = np.asarray(cv2.cvtColor(overlay, cv2.COLOR_RGB2BGR), np.uint8)  # converted once for every attempt below
    for q in (quality, min(quality, 60), min(quality, 40)):
        data = encode_bgr(bgr, q)
        if data is not None and len(data) <= max_bytes:
            return data
    while min(bgr.shape[:2]) >= 32:
        bgr = np.asarray(cv2.resize(bgr, (bgr.shape[1] // 2, bgr.shape[0] // 2), interpolation=cv2.INTER_AREA),
                         np.uint8)
        data = encode_bgr(bgr, min(quality, 60))
        if data is not None and len(data) <= max_bytes:
            return data
    return None


def cpu_temperature_c(path: str = "/sys/class/thermal/thermal_zone0/temp") -> float | None:
    """The SoC temperature where the OS exposes it (a Pi does; many containers and PCs do not)."""
    try:
        return round(int(Path(path).read_text().strip()) / 1000.0, 1)
    except (OSError, ValueError):
        return None


def discovery_configs(*, device_id: str, topics: Topics, discovery_prefix: str, class_names: tuple[str, ...],
                      model_name: str, model_sha256: str, version: str) -> dict[str, dict[str, Any]]:
    """Home Assistant MQTT discovery: topic -> retained config for the label sensor (probabilities as attributes),
    the confidence sensor and the overlay camera, all under one device."""
    node = topic_safe(device_id)
    device = {
        "identifiers": [f"edge-explainer-{node}"],
        "name": f"edge-explainer {device_id}",
        "manufacturer": "edge-explainer",
        "model": f"{model_name} ({', '.join(class_names)})",
        "sw_version": f"{version}, bundle {model_sha256[:12]}",
    }
    availability = {"availability_topic": topics.status, "payload_available": STATUS_ONLINE,
                    "payload_not_available": STATUS_OFFLINE}
    base = f"{discovery_prefix}"
    return {
        f"{base}/sensor/{node}/label/config": {
            "name": "Label", "unique_id": f"{node}_label", "object_id": f"{node}_label", "icon": "mdi:eye",
            "state_topic": topics.prediction, "value_template": "{{ value_json.label }}",
            "json_attributes_topic": topics.prediction,
            "json_attributes_template": "{{ value_json.probabilities | tojson }}",
            "device": device, **availability,
        },
        f"{base}/sensor/{node}/confidence/config": {
            "name": "Confidence", "unique_id": f"{node}_confidence", "object_id": f"{node}_confidence",
            "state_topic": topics.prediction, "value_template": "{{ (value_json.confidence * 100) | round(1) }}",
            "unit_of_measurement": "%", "state_class": "measurement", "icon": "mdi:percent",
            "device": device, **availability,
        },
        f"{base}/camera/{node}/overlay/config": {
            "name": "Overlay", "unique_id": f"{node}_overlay", "object_id": f"{node}_overlay",
            "topic": topics.overlay, "device": device, **availability,
        },
    }
