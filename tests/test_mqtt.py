"""The MQTT sink against a real Mosquitto: messages, Home Assistant discovery, last will, a broker outage, logins."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np
import pytest
from broker import Broker, Collector, free_port, retained
from conftest import REPO, run_python

from edge.records import SinkError
from edge.service.config import ConfigError, build_config
from edge.sinks.disklog import read_jsonl
from edge.sinks.mqtt_messages import overlay_jpeg, parse_broker_url, small_heatmap, topic_safe

PREDICTION_KEYS = {"time", "frame", "source", "label", "class_index", "probabilities", "score", "method",
                   "latency_ms", "peak", "heatmap", "model_sha256", "device"}
CLASSES = ("Apfel", "Orange", "Tomate")


def edge_popen(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "edge", "run", "--no-display", *args], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=dict(os.environ, PYTHONPATH=str(REPO), **(env or {})))


# -- messages, no broker ---------------------------------------------------------------------------------------


def test_broker_urls() -> None:
    a = parse_broker_url("mqtt://cam@broker.local")
    assert (a.host, a.port, a.username, a.tls) == ("broker.local", 1883, "cam", False)
    assert parse_broker_url("mqtts://10.0.0.2:8884").port == 8884 and parse_broker_url("mqtts://h").port == 8883
    for bad, words in [("http://h", "mqtt://"), ("mqtt://", "no host"), ("mqtt://h:99999", "(?i)port"),
                       ("mqtt://h/x", "no path")]:
        with pytest.raises(SinkError, match=words):
            parse_broker_url(bad)
    with pytest.raises(SinkError, match="password_file") as e:
        parse_broker_url("mqtt://cam:hunter2@h")
    assert "hunter2" not in str(e.value)
    # a URL with a password that is wrong in other ways too: refused for the password, which is never repeated
    for bad in ["mqtt://cam:hunter2@h:99999", "mqtt://cam:hunter2@h:12ab", "tcp://cam:hunter2@h",
                "mqtt://cam:hunter2@[::1", "mqtt://cam:hun#ter2@h", "mqtt://cam:hun@ter2@[zz]:1883"]:
        with pytest.raises(SinkError, match="password_file") as e:
            parse_broker_url(bad)
        assert "hun" not in str(e.value) and "ter2" not in str(e.value), str(e.value)
    # the same mistakes without a password are named; a password urllib cannot even find (it holds a /) is hidden
    for bad, words in [("mqtt://cam@h:99999", "port"), ("mqtt://h:12ab", "port"), ("mqtt://cam@h:0", "port"),
                       ("tcp://cam@h", "mqtt://"), ("mqtt://cam@[::1", "IPv6"), ("mqtt://[zz]:1883", "IPv6"),
                       ("mqtt://cam:hun/ter2@h", "port")]:
        with pytest.raises(SinkError, match=words) as e:
            parse_broker_url(bad)
        assert "hun" not in str(e.value) and "ter2" not in str(e.value), str(e.value)


def test_topic_prefixes_with_wildcards_are_refused_at_load() -> None:
    for key in ("prefix", "discovery_prefix", "ha_status_topic"):
        for value in ("cams/+/x", "ha/#", "+"):
            with pytest.raises(ConfigError, match=f"\\[mqtt\\] {key}: .*wildcard") as e:
                build_config({"mqtt": {"url": "mqtt://h", key: value}})
            assert "\n" not in str(e.value)
    assert build_config({"mqtt": {"prefix": "site/cams-1.a"}}).mqtt.prefix == "site/cams-1.a"


def test_small_heatmap_and_overlay_cap() -> None:
    cam = np.zeros((12, 12), np.float32)
    cam[:6, 6:] = 1.0  # the top-right quarter
    small = np.array(small_heatmap(cam, 8))
    assert small.shape == (8, 8) and small[:3, 5:].min() == 1.0 and small[5:, :3].max() == 0.0
    noise = np.random.default_rng(1).random((40, 40), dtype=np.float32)  # (40, 40) f32, as the CAM is
    text = json.dumps(small_heatmap(noise, 8))
    decimals = [len(n.split(".")[1]) for n in re.findall(r"\d+\.\d+", text)]
    assert len(decimals) == 64 and max(decimals) <= 3, text  # 3 places, not float32 noise such as 0.0049999998
    rng = np.random.default_rng(0)
    noisy = rng.integers(0, 256, (480, 640, 3), np.uint8)  # incompressible: must shrink to fit
    full = overlay_jpeg(noisy, quality=90, max_bytes=10**7)
    capped = overlay_jpeg(noisy, quality=90, max_bytes=40_000)
    assert full is not None and capped is not None and len(capped) <= 40_000 < len(full)
    assert cv2.imdecode(np.frombuffer(full, np.uint8), cv2.IMREAD_COLOR).shape == (480, 640, 3)
    assert overlay_jpeg(noisy, quality=90, max_bytes=100) is None
    assert topic_safe("cam 7/#+") == "cam_7" and topic_safe("///") == "edge"


# -- a run against the broker ----------------------------------------------------------------------------------


def test_a_run_publishes_predictions_overlays_discovery_and_status(broker: Broker, tmp_path: Path) -> None:
    sub = Collector(broker.port)
    proc = run_python("-m", "edge", "run", "--no-display", "--source", "images:samples", "--mqtt", broker.url,
                      "--device-id", "pi-7", "--log-dir", str(tmp_path / "log"), timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    samples = sorted(p.name for p in (REPO / "samples").glob("*.jpg"))
    predictions = sub.wait_for("edge-explainer/pi-7/prediction", len(samples))
    overlays = sub.wait_for("edge-explainer/pi-7/overlay", len(samples))
    sub.close()
    assert len(predictions) == len(samples) and len(overlays) == len(samples)
    records = [json.loads(m.payload) for m in predictions]
    assert sorted(r["file"] for r in records) == samples
    for r, m in zip(records, overlays, strict=True):
        assert r.keys() >= PREDICTION_KEYS, PREDICTION_KEYS - r.keys()
        assert r["device"] == "pi-7" and set(r["probabilities"]) == set(CLASSES)
        expected = {c for c in CLASSES if c.lower() in r["file"]}  # apfel_01.jpg, apfel+orange_01.jpg
        assert r["label"] in expected, (r["file"], r["probabilities"])
        heat = np.array(r["heatmap"])
        assert heat.shape == (8, 8) and heat.min() >= 0.0 and heat.max() <= 1.0 and heat.max() > 0.5
        overlay = cv2.imdecode(np.frombuffer(m.payload, np.uint8), cv2.IMREAD_COLOR)
        frame = cv2.imread(str(REPO / "samples" / r["file"]))
        assert overlay is not None and overlay.shape == frame.shape
    # the disk log saw the same frames
    assert len(read_jsonl(tmp_path / "log" / "predictions.jsonl")) == len(samples)
    kept = retained(broker.port, "#")
    discovery = {t: json.loads(p) for t, p in kept.items() if t.startswith("homeassistant/")}
    assert set(discovery) == {"homeassistant/sensor/pi-7/label/config", "homeassistant/sensor/pi-7/confidence/config",
                              "homeassistant/camera/pi-7/overlay/config"}
    assert {d["device"]["identifiers"][0] for d in discovery.values()} == {"edge-explainer-pi-7"}
    assert all(c in discovery["homeassistant/sensor/pi-7/label/config"]["device"]["model"] for c in CLASSES)
    assert kept["edge-explainer/pi-7/status"] == b"offline"  # a clean exit says so itself
    stats = json.loads(kept["edge-explainer/pi-7/stats"])
    assert stats["predictions"] == len(samples) and stats["mqtt_dropped"] == 0 and stats["frames"] == len(samples)

    forget = run_python("-m", "edge", "run", "--mqtt", broker.url, "--device-id", "pi-7", "--mqtt-forget")
    assert forget.returncode == 0, forget.stderr[-2000:]
    assert not [t for t in retained(broker.port, "#") if "pi-7" in t]


def test_status_is_online_while_running_and_offline_after_sigkill(broker: Broker) -> None:
    proc = edge_popen("--source", "synthetic", "--fps", "10", "--mqtt", broker.url, "--device-id", "k9")
    try:
        sub = Collector(broker.port, "edge-explainer/k9/#")
        assert sub.wait_for("/prediction", 1), "no prediction while running"
        assert retained(broker.port, "edge-explainer/k9/status") == {"edge-explainer/k9/status": b"online"}
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=10)
    deadline = time.monotonic() + 10  # the broker publishes the last will once it sees the socket close
    while time.monotonic() < deadline and not any(m.payload == b"offline" for m in sub.on("/status")):
        time.sleep(0.05)
    sub.close()
    assert retained(broker.port, "edge-explainer/k9/status") == {"edge-explainer/k9/status": b"offline"}


def test_a_broker_outage_never_stalls_the_loop(broker: Broker, tmp_path: Path) -> None:
    config = tmp_path / "edge.toml"
    config.write_text('[mqtt]\nevery_frame = true\nqueue_size = 20\nstats_every_s = 1.0\n'
                      '[log]\nevery_frame = true\nsave_frames = false\nsave_overlays = false\nfsync = false\n')
    log = tmp_path / "log"
    proc = edge_popen("--config", str(config), "--source", "synthetic", "--fps", "20", "--mqtt", broker.url,
                      "--device-id", "out", "--log-dir", str(log))
    sub = Collector(broker.port, "edge-explainer/out/prediction")
    try:
        assert sub.wait_for("/prediction", 20), "nothing published before the outage"
        broker.stop()
        down = time.time()
        time.sleep(4)
        broker.start()
        up = time.time()
        n_before = len(sub.on("/prediction"))
        assert len(sub.wait_for("/prediction", n_before + 20, timeout=30)) >= n_before + 20, "delivery did not resume"
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=20)
        sub.close()
    assert proc.returncode == 0, stderr[-2000:]
    records = read_jsonl(log / "predictions.jsonl")
    frames = [r["frame"] for r in records]
    # The disk log keeps up whatever the broker does. On a loaded machine its own worker (or the loop's capture) may
    # drop a frame now and then, as it would without MQTT: bound that, and let the rate check below judge the outage.
    missing = set(range(frames[0], frames[-1] + 1)) - set(frames)
    assert len(missing) <= 0.1 * len(frames) + 5, f"the disk log missed {len(missing)} of {len(frames)} frames"
    stamps = np.array([datetime.fromisoformat(r["time"]).timestamp() for r in records])
    # The loop's rate during the outage against its own rate before it in this run, with half as the margin: a
    # loop that waits for the broker logs next to nothing during the outage (planted, waiting up to 0.3 s for the
    # broker per flush: 3.3 fps against 20.6), and a machine would have to get twice as busy in those 3 s to flip it.
    # (Not against the rate after the outage: a loop that waits for the broker is still catching up then.)
    during = _rate(stamps, down + 0.5, up - 0.5)
    before = _rate(stamps, stamps[0], down)
    print(f"frame rate before the outage {before:.1f} fps, during it {during:.1f} fps")
    assert during >= 0.5 * before, (before, during)
    delivered = {json.loads(m.payload)["frame"] for m in sub.on("/prediction")}
    lost = set(frames) - delivered
    assert lost, "an outage of 4 s at 20 fps with a 20-message queue must drop something"
    summary = re.search(r"(\d+) messages published, (\d+) dropped while the broker was away", stderr)
    assert summary, stderr[-2000:]
    published, dropped = map(int, summary.groups())
    print(f"{len(frames)} frames, {len(delivered)} predictions delivered, {published} messages published, "
          f"{dropped} dropped")
    assert dropped > 0 and published >= len(delivered)
    assert "connection lost" in stderr and "connected again" in stderr


def _rate(stamps: np.ndarray, start: float, end: float) -> float:
    """Records per second with a time stamp in [start, end]."""
    return float(((stamps >= start) & (stamps <= end)).sum() / max(end - start, 1e-3))


def test_a_wrong_password_is_one_line_naming_the_broker_and_never_shown(auth_broker: Broker, tmp_path: Path) -> None:
    url = f"mqtt://cam@127.0.0.1:{auth_broker.port}"
    bad = run_python("-m", "edge", "run", "--no-display", "--source", "images:samples", "--mqtt", url,
                     env={"EDGE_MQTT_PASSWORD": "wrong-Secret-42"}, timeout=60)
    assert bad.returncode == 2
    lines = [line for line in bad.stderr.splitlines() if line.startswith("edge: error:")]
    assert len(lines) == 1 and f"127.0.0.1:{auth_broker.port}" in lines[0] and "refused the login" in lines[0]
    assert "wrong-Secret-42" not in bad.stdout + bad.stderr
    password = tmp_path / "mqtt-password"
    password.write_text("s3cret-Pa55\n")
    good = run_python("-m", "edge", "run", "--no-display", "--source", "images:samples", "--mqtt", url,
                      "--debug", "--config", str(_config(tmp_path, f'[mqtt]\npassword_file = "{password}"\n')),
                      timeout=60)
    assert good.returncode == 0, good.stderr[-2000:]
    assert "12 predictions, 12 overlays; 2" in good.stderr  # 24 + status, discovery, stats: all published
    assert "s3cret-Pa55" not in good.stdout + good.stderr


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "edge.toml"
    path.write_text(text)
    return path


def test_an_unreachable_broker_is_one_error_line_and_the_run_goes_on(tmp_path: Path) -> None:
    url = f"mqtt://127.0.0.1:{free_port()}"  # nothing listens there
    proc = run_python("-m", "edge", "run", "--no-display", "--source", "images:samples", "--mqtt", url,
                      "--log-dir", str(tmp_path / "log"), timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert sum("unreachable (" in line for line in proc.stderr.splitlines()) == 1
    assert len(read_jsonl(tmp_path / "log" / "predictions.jsonl")) == 12
    required = run_python("-m", "edge", "run", "--no-display", "--source", "images:samples", "--mqtt", url,
                          "--config", str(_config(tmp_path, "[mqtt]\nrequired = true\n")), timeout=60)
    assert required.returncode == 2 and required.stderr.strip().splitlines()[-1].startswith("edge: error: MQTT")


def test_mqtts_with_the_brokers_ca(tls_broker: Broker, tmp_path: Path) -> None:
    sub = Collector(tls_broker.port, ca_file=tls_broker.ca_file)
    config = _config(tmp_path, f'[mqtt]\nca_file = "{tls_broker.ca_file}"\n')
    proc = run_python("-m", "edge", "run", "--no-display", "--source", "images:samples", "--mqtt", tls_broker.url,
                      "--device-id", "tls", "--config", str(config), timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(sub.wait_for("edge-explainer/tls/prediction", 12)) == 12
    sub.close()
    # without the CA the certificate cannot be verified: the connection fails, the run itself goes on
    untrusted = run_python("-m", "edge", "run", "--no-display", "--source", "images:samples", "--mqtt",
                           tls_broker.url, "--device-id", "tls2", timeout=60)
    assert untrusted.returncode == 0
    errors = [line for line in untrusted.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "TLS failed" in errors[0] and "CERTIFICATE_VERIFY_FAILED" in errors[0], errors
