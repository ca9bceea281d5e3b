"""[notify]: an MQTT event with an overlay thumbnail on a chosen class, through a real Mosquitto, with a cooldown."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from broker import Broker, Collector, retained
from conftest import run_python
from test_disklog import NAMES, make_result

from edge.records import Result, SinkError
from edge.service.config import ConfigError, build_config
from edge.sinks.mqtt import MqttConfig, MqttSink
from edge.sinks.mqtt_discovery import DeviceInfo
from edge.sinks.mqtt_notify import EventNotifier, NotifyConfig

DEVICE = DeviceInfo(class_names=NAMES, model_name="fruit", model_sha256="ab" * 32, version="test")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _big_result(index: int, class_index: int, confidence: float) -> Result:
    result = make_result(index, class_index=class_index, confidence=confidence)
    result.drawn = np.full((480, 640, 3), 200, np.uint8)  # (H, W, 3) uint8: a camera-sized overlay
    return result


def test_event_and_thumbnail_reach_a_subscriber_and_home_assistant(broker: Broker) -> None:
    listener = Collector(broker.port)
    sink = MqttSink(MqttConfig(url=broker.url, device_id="pi-cam", every_s=3600, on_change=False),
                    DEVICE, notify=NotifyConfig(classes="Orange", min_confidence=0.7, cooldown_s=60))
    clock = Clock()
    sink.events._clock = clock
    sink.open()
    try:
        # Apfel (not chosen), Orange below min_confidence, then Orange for 3 frames 10 s apart (one event), then
        # Orange again after 70 s unseen (a second event).
        for i, (cls, p, dt) in enumerate([(0, 0.9, 0), (1, 0.6, 1), (1, 0.8, 1), (1, 0.9, 10), (1, 0.95, 10),
                                          (1, 0.9, 70)]):
            clock.now += dt
            sink.handle(_big_result(i, cls, p))
    finally:
        sink.close()
    events = listener.wait_for("/event", 2)
    thumbs = listener.wait_for("/event/thumbnail", 2)
    listener.close()
    assert len(events) == 2 and len(thumbs) == 2
    first = json.loads(events[0].payload)
    assert first["class"] == "Orange" and first["frame"] == 2 and first["confidence"] == pytest.approx(0.8)
    assert first["device"] == "pi-cam" and first["thumbnail_topic"] == "edge-explainer/pi-cam/event/thumbnail"
    assert json.loads(events[1].payload)["frame"] == 5
    assert not events[0].retain
    thumb = cv2.imdecode(np.frombuffer(thumbs[0].payload, np.uint8), cv2.IMREAD_COLOR)
    assert thumb.shape == (240, 320, 3)  # the overlay shrunk to 320 px on its longer side
    assert thumbs[0].time <= events[0].time  # the picture is there before the automation fires
    kept = retained(broker.port, "#")
    assert "edge-explainer/pi-cam/event/thumbnail" in kept and "edge-explainer/pi-cam/event" not in kept
    camera = json.loads(kept["homeassistant/camera/pi-cam/event/config"])
    assert camera["topic"] == "edge-explainer/pi-cam/event/thumbnail"
    assert camera["default_entity_id"] == "camera.pi_cam_event"
    assert sink.events.events == 2 and sink.events.suppressed == 2


def test_cooldown_counts_from_the_last_sighting() -> None:
    clock = Clock()
    notifier = EventNotifier(NotifyConfig(classes="Apfel, Tomate", cooldown_s=30, min_confidence=0.5), NAMES,
                             prefix="p", device_id="d", clock=clock)
    fired = []
    for i, (cls, dt) in enumerate([(0, 0), (0, 20), (0, 20), (0, 20), (2, 1), (0, 31), (1, 1)]):
        clock.now += dt
        if notifier.check(make_result(i, class_index=cls, confidence=0.9)):
            fired.append(i)
    # Apfel seen every 20 s stays one event (a lingering object); Tomate is its own class; Apfel again after 31 s.
    assert fired == [0, 4, 5]


def test_unknown_classes_and_notify_without_mqtt_are_one_line_errors() -> None:
    with pytest.raises(SinkError, match=r"'Banane' not among the model's classes \(Apfel, Orange, Tomate\)"):
        EventNotifier(NotifyConfig(classes="Apfel,Banane"), NAMES, prefix="p", device_id="d")
    from edge.service.cli import build_sinks

    class Source:
        live = True

    with pytest.raises(ConfigError, match=r"\[notify\] needs \[mqtt\] url"):
        build_sinks(build_config({"notify": {"classes": "Apfel"}, "preview": {"enabled": False}}), Source(),
                    None, opencv_window=False, device=DEVICE)  # type: ignore[arg-type]


def test_a_run_with_a_trigger_reports_it_in_the_mqtt_stats(broker: Broker, tmp_path: Path) -> None:
    """The service end to end: [trigger] from the config file reaches the loop, and the stats say what it skipped."""
    config = tmp_path / "edge.toml"
    config.write_text('[trigger]\nmode = "interval"\ninterval_s = 0.25\n[mqtt]\nstats_every_s = 0.5\n')
    proc = run_python("-m", "edge", "run", "--no-display", "--config", str(config), "--source", "synthetic",
                      "--fps", "20", "--max-frames", "4", "--mqtt", broker.url, "--device-id", "cam", timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    stats = json.loads(retained(broker.port, "edge-explainer/cam/stats")["edge-explainer/cam/stats"])
    assert stats["trigger"] == "interval" and stats["frames_skipped"] >= 8  # 4 explained at 4 a second of 20 fps
    assert {"cpu_temp_c", "throttled", "throttled_now", "explain_min_gap_s", "last_explanation_age_s"} <= stats.keys()
    closing = [line for line in proc.stderr.splitlines() if "stopped after" in line]
    assert closing and "stopped after 4 frames (" in closing[0] and " not explained, " in closing[0]


def test_a_drift_alert_is_an_event_once_per_alert_and_cooldown() -> None:
    clock = Clock()
    notifier = EventNotifier(NotifyConfig(drift=True, cooldown_s=100), NAMES, prefix="p", device_id="d", clock=clock)
    states = [("learning", 0), ("ok", 10), ("alert", 10), ("alert", 10), ("ok", 10), ("alert", 10), ("ok", 10),
              ("alert", 200)]
    fired = {}
    for i, (state, dt) in enumerate(states):
        clock.now += dt
        result = make_result(i, class_index=0, confidence=0.9)
        result.drift = {"state": state, "distance": 0.4, "cause": "moved"} if state == "alert" else {"state": state}
        messages = notifier.check(result)
        if messages:
            fired[i] = json.loads(messages[-1][1])
    # Alert at 2; still alert at 3 (no event); alert again at 5, within the cooldown (suppressed); at 7, after it.
    assert list(fired) == [2, 7]
    assert fired[2]["event"] == "drift" and fired[2]["drift"]["cause"] == "moved" and fired[2]["class"] == "Apfel"
    assert notifier.suppressed == 1
    quiet = EventNotifier(NotifyConfig(), NAMES, prefix="p", device_id="d", clock=clock)  # drift off: nothing
    alert = make_result(0)
    alert.drift = {"state": "alert"}
    assert quiet.check(alert) == [] and not quiet.on
