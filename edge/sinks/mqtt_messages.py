"""What the MQTT sink publishes, as plain data: the broker URL, topics and payloads (Home Assistant's discovery
configs are in edge.sinks.mqtt_discovery).

Kept apart from the network client (edge.sinks.mqtt) so every message can be built and checked without a broker.
"""

from __future__ import annotations

import json
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import cv2
import numpy as np
from numpy.typing import NDArray

from edge.jpeg import encode_bgr
from edge.records import Result, SinkError
from edge.safe_io import read_regular
from edge.sinks.record import make_record

MAX_SECRET_FILE = 4096  # bytes of a password file read at most
MAX_MQTT_TEXT = 8192  # bytes of a client id, device id or topic prefix

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
STATUS_ONLINE = "online"
STATUS_OFFLINE = "offline"
_TOPIC_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
# user:password@, found even where urlsplit cannot parse the URL (a bad port, a broken IPv6 host, a # or @ inside
# the password): such a URL is refused before anything else is said about it
_HAS_PASSWORD = re.compile(r"//[^/@:]*:[^/]*@")
# from the user name's colon to the last @: what error messages show as *** (also where the password holds a /)
_URL_PASSWORD = re.compile(r"(//[^/@:]*):.*@")


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


_PASSWORD_IN_URL = ("[mqtt] url: do not put the password in the URL (it shows in ps and logs); "
                    "use [mqtt] password_file or password_env")


def redact_url(url: str) -> str:
    """The URL as it may appear in an error message: any password replaced by ***."""
    return _URL_PASSWORD.sub(r"\1:***@", url)


def parse_broker_url(url: str) -> BrokerAddress:
    """The broker address, or SinkError naming what is wrong (a password in the URL is refused: ps would show it;
    no error message repeats it)."""
    shown = repr(redact_url(url))
    if _HAS_PASSWORD.search(url):
        raise SinkError(_PASSWORD_IN_URL)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:  # urllib's words, not its text: a "port" it quotes may be part of a password
        problem = "the port must be a number from 1 to 65535" if "Port" in str(e) else "a broken [IPv6] host"
        raise SinkError(f"[mqtt] url {shown}: {problem}") from None  # not chained: --debug would print urllib's text
    if parts.scheme not in DEFAULT_PORTS:
        raise SinkError(f"[mqtt] url {shown}: expected mqtt://[user@]host[:port] or mqtts://...")
    if not parts.hostname:
        raise SinkError(f"[mqtt] url {shown}: no host name")
    if parts.password is not None:
        raise SinkError(_PASSWORD_IN_URL)
    if parts.path not in ("", "/") or parts.query:
        raise SinkError(f"[mqtt] url {shown}: a broker URL has no path or query")
    if port == 0:
        raise SinkError(f"[mqtt] url {shown}: the port must be a number from 1 to 65535")
    port = DEFAULT_PORTS[parts.scheme] if port is None else port
    return BrokerAddress(parts.scheme, parts.hostname, port, parts.username or None)


def short_mqtt_text(text: str) -> None:
    """An id or topic part within MAX_MQTT_TEXT bytes (MQTT strings stop at 65,535 bytes; topics add suffixes)."""
    if len(text.encode("utf-8", "surrogateescape")) > MAX_MQTT_TEXT:
        raise ValueError(f"longer than {MAX_MQTT_TEXT} bytes")


def topic_part(topic: str) -> None:
    """A prefix of topics we publish to: no wildcards, not too long."""
    no_wildcards(topic)
    short_mqtt_text(topic)


def no_wildcards(topic: str) -> None:
    """A topic we publish or subscribe to by name: MQTT forbids + and # in published topics (the broker drops them
    and nothing arrives), so a prefix with them is refused when the config is read."""
    if "+" in topic or "#" in topic:
        raise ValueError(f"{topic!r} contains an MQTT wildcard (+ or #); topics published to cannot have them")


def read_password(password_file: str, password_env: str) -> str | None:
    """The password from the file (first line) if set, else from the environment variable if set, else None."""
    if password_file:
        try:
            lines = read_regular(password_file, MAX_SECRET_FILE).decode("utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            raise SinkError(f"[mqtt] password_file {password_file}: cannot read it ({reason})") from e
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
    # rounded in float64: a float32 0.005 becomes the JSON 0.004999999888241291, three times the bytes
    return np.round(np.clip(small, 0.0, 1.0).astype(np.float64), 3).tolist()


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
