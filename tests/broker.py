"""A real Mosquitto for the tests (Debian's `mosquitto`, installed by scripts/test from scripts/apt-packages.txt), on a
free loopback port with a generated config, and a paho subscriber that records everything it receives."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Broker:
    """One mosquitto process; stop() and start() again on the same port simulate an outage."""

    dir: Path
    port: int
    users: dict[str, str] = field(default_factory=dict)
    tls: bool = False  # a TLS listener with a CA and server certificate made for 127.0.0.1 (ca.pem in dir)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> Path:
        return self.dir / "ca.pem"

    def write_config(self) -> Path:
        lines = [f"listener {self.port} 127.0.0.1", "persistence false", "log_dest stderr",
                 "log_type error", "log_type warning", "log_type notice",
                 # the fleet test subscribes to thousands of QoS 1 messages at once: do not cap the client's queue
                 "max_queued_messages 0", "max_inflight_messages 0"]
        if self.tls:
            make_certificates(self.dir)
            lines += [f"cafile {self.dir / 'ca.pem'}", f"certfile {self.dir / 'server.pem'}",
                      f"keyfile {self.dir / 'server.key'}"]
        if os.geteuid() == 0:
            lines.append("user root")  # mosquitto drops root to user 'mosquitto', which cannot read our tmp files
        if self.users:
            passwd = self.dir / "passwd"
            passwd.write_text("".join(f"{u}:{p}\n" for u, p in self.users.items()))
            passwd.chmod(0o600)
            # hashes the plain-text file in place, as mosquitto_passwd -U documents
            subprocess.run(["mosquitto_passwd", "-U", str(passwd)], check=True, capture_output=True)
            lines += ["allow_anonymous false", f"password_file {passwd}"]
        else:
            lines.append("allow_anonymous true")
        conf = self.dir / "mosquitto.conf"
        conf.write_text("\n".join(lines) + "\n")
        return conf

    def start(self) -> None:
        conf = self.write_config()
        self.log = open(self.dir / "mosquitto.log", "ab")  # noqa: SIM115 (kept open for the process's life)
        self.proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {(self.dir / 'mosquitto.log').read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not listen within 10 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)
            self.log.close()
        self.proc = None


def make_certificates(directory: Path) -> None:
    """A throwaway CA (ca.pem) and a server certificate it signed for IP 127.0.0.1 (server.pem, server.key)."""
    if (directory / "server.pem").exists():
        return

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=edge-explainer test CA",
            "-keyout", "ca.key", "-out", "ca.pem")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server.key",
            "-out", "server.csr")
    (directory / "san.ext").write_text("subjectAltName = IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
            "-extfile", "san.ext", "-out", "server.pem")


def start_broker(tmp: Path, users: dict[str, str] | None = None, *, tls: bool = False) -> Broker:
    if shutil.which("mosquitto") is None:
        pytest.fail("mosquitto is not installed: ./scripts/test installs it (apt install mosquitto)")
    broker = Broker(tmp, free_port(), users or {}, tls)
    broker.start()
    return broker


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    (tmp_path / "broker").mkdir()
    b = start_broker(tmp_path / "broker")
    yield b
    b.stop()


@pytest.fixture
def auth_broker(tmp_path: Path) -> Iterator[Broker]:
    (tmp_path / "auth-broker").mkdir()
    b = start_broker(tmp_path / "auth-broker", {"cam": "s3cret-Pa55"})
    yield b
    b.stop()


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[Broker]:
    (tmp_path / "tls-broker").mkdir()
    b = start_broker(tmp_path / "tls-broker", tls=True)
    yield b
    b.stop()


@dataclass
class Received:
    topic: str
    payload: bytes
    retain: bool
    time: float


class Collector:
    """A paho subscriber on a topic filter that keeps every message; it resubscribes after a broker restart."""

    def __init__(self, port: int, topic: str = "#", *, qos: int = 1, ca_file: Path | None = None) -> None:
        self.topic = topic
        self.qos = qos
        self.messages: list[Received] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.reconnect_delay_set(1, 1)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *_args: self._subscribed.set()
        self.client.on_message = self._on_message
        if ca_file is not None:
            self.client.tls_set(ca_certs=str(ca_file))
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self._subscribed.wait(5), "the test subscriber could not subscribe"

    def _on_connect(self, client: mqtt.Client, *_args: object) -> None:
        client.subscribe(self.topic, qos=self.qos)

    def _on_message(self, _client: mqtt.Client, _userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(Received(msg.topic, bytes(msg.payload), bool(msg.retain), time.monotonic()))

    def on(self, suffix: str) -> list[Received]:
        with self._lock:
            return [m for m in self.messages if m.topic.endswith(suffix)]

    def wait_for(self, suffix: str, count: int, timeout: float = 20) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.on(suffix)) < count:
            time.sleep(0.05)
        return self.on(suffix)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def retained(port: int, topic: str, wait: float = 1.0) -> dict[str, bytes]:
    """The retained messages a new subscriber gets on topic (a filter), topic -> payload."""
    c = Collector(port, topic)
    time.sleep(wait)
    c.close()
    return {m.topic: m.payload for m in c.messages if m.retain}
