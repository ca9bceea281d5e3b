"""[faithfulness] on the camera: frames scored by a background worker that never makes the loop wait (a busy worker
skips the frame and counts it), the scores in the next JSONL record with their frame number, running means per class."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from broker import Broker, Collector, retained
from conftest import REPO, run_python
from http_client import ask

from edge import Explainer
from edge.http.sink import DashboardConfig, DashboardSink
from edge.records import Frame, Result
from edge.service.config import ConfigError, build_config
from edge.service.faithfulness_worker import FaithfulnessConfig, FaithfulnessWorker
from edge.sinks import read_jsonl

FRUIT = REPO / "models" / "fruit"
TOKEN = "t0ken+/=-0123456789abc"


def test_worker_skips_while_busy_and_keeps_means() -> None:
    explainer = Explainer.load(FRUIT, num_threads=1)
    worker = FaithfulnessWorker(explainer, FaithfulnessConfig(enabled=True, every_n=2))
    frame = np.random.default_rng(0).integers(0, 256, (100, 100, 3), dtype=np.uint8)  # (100, 100, 3) uint8
    ex = explainer.explain(frame)
    try:
        for i in range(40):  # far faster than 41 passes a score: most offers find the worker busy
            worker.offer(i, frame, ex)
        deadline = time.monotonic() + 60
        while worker.scored == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        new = worker.take_new()
    finally:
        worker.close()
    assert worker.offered == 40 and worker.skipped >= 1 and worker.scored >= 1
    assert worker.scored + worker.skipped <= 20  # only every 2nd frame is offered to the worker
    assert new is not None and new["frame"] % 2 == 0 and new["class"] == ex.label and new["passes"] == 41
    assert {"confidence_change", "deletion_auc", "insertion_auc"} <= set(new)
    assert worker.take_new() is None  # handed out once
    assert worker.means[ex.label]["n"] == worker.scored


def test_config_is_checked() -> None:
    assert not build_config({}).faithfulness.enabled  # off by default
    with pytest.raises(ConfigError, match="every_n"):
        build_config({"faithfulness": {"every_n": 0}})
    with pytest.raises(ConfigError, match="score"):
        build_config({"faithfulness": {"score": "margin"}})


def test_live_run_records_scores(tmp_path: Path) -> None:
    config = tmp_path / "edge.toml"
    config.write_text("[faithfulness]\nenabled = true\nevery_n = 5\ncurves = false\n"
                      "[log]\nevery_s = 0.0\non_change = false\nevery_frame = false\n")  # a log of nothing else
    proc = run_python("-m", "edge", "run", "--config", str(config), "--model", str(FRUIT), "--source", "synthetic",
                      "--max-frames", "200", "--no-display", "--stdout", "--log-dir", str(tmp_path / "log"),
                      timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    scored = [r for r in records if "faithfulness" in r]
    assert scored, "no record carried faithfulness scores"
    # A disk log that keeps nothing else still keeps every record that carries new scores.
    logged = [r for r in read_jsonl(tmp_path / "log" / "predictions.jsonl") if "faithfulness" in r]
    assert [r["faithfulness"] for r in logged] == [r["faithfulness"] for r in scored]
    for r in scored:
        f = r["faithfulness"]
        assert f["frame"] % 5 == 0 and f["frame"] <= r["frame"] and f["passes"] == 2
        assert set(f) >= {"confidence_change", "drop_in_confidence", "increase_in_confidence", "class", "method"}


def test_mqtt_prediction_message_carries_scores(broker: Broker, tmp_path: Path) -> None:
    config = tmp_path / "edge.toml"
    config.write_text("[faithfulness]\nenabled = true\nevery_n = 5\ncurves = false\n")
    sub = Collector(broker.port)
    proc = run_python("-m", "edge", "run", "--config", str(config), "--model", str(FRUIT), "--source", "synthetic",
                      "--max-frames", "200", "--no-display", "--mqtt", broker.url, "--device-id", "cam1", timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    sub.wait_for("/status", 2)
    sub.close()
    predictions = [json.loads(m.payload) for m in sub.messages if m.topic.endswith("/prediction")]
    scored = [p["faithfulness"] for p in predictions if "faithfulness" in p]
    assert scored and all("confidence_change" in f and f["frame"] % 5 == 0 for f in scored)
    # Home Assistant's sensor: its retained config, and its topic carrying each set of scores (retained)
    configs = {t: json.loads(p) for t, p in retained(broker.port, "homeassistant/#").items() if p}
    sensor = configs["homeassistant/sensor/cam1/faithfulness/config"]
    assert sensor["state_topic"] == sensor["json_attributes_topic"] == "edge-explainer/cam1/faithfulness"
    assert "value_json.confidence_change" in sensor["value_template"]
    published = [json.loads(m.payload) for m in sub.messages if m.topic == sensor["state_topic"]]
    assert [{k: v for k, v in p.items() if k != "time"} for p in published] == scored


def test_dashboard_keeps_running_means_per_class() -> None:
    """The dashboard's /api/heatmaps: each class's mean scores beside its mean heatmap (from real worker scores)."""
    explainer = Explainer.load(FRUIT, num_threads=1)
    sink = DashboardSink(DashboardConfig(enabled=True, port=0, token=TOKEN), about={"model": "fruit",
                                                                                     "classes": explainer.class_names})
    sink.open()
    try:
        frame = np.random.default_rng(0).integers(0, 256, (100, 100, 3), dtype=np.uint8)  # (100, 100, 3) uint8
        ex = explainer.explain(frame)
        worker = FaithfulnessWorker(explainer, FaithfulnessConfig(enabled=True, every_n=1))
        sets = []
        for i in range(2):
            worker.offer(i, frame, ex)
            while worker.scored <= i:
                time.sleep(0.02)
            sets.append(worker.take_new())
        worker.close()
        for i, scores in enumerate(sets):
            sink.handle(Result(frame=Frame(image=frame, index=i, timestamp=1000.0 + i), explanation=ex, cam=ex.cam,
                               top=[(ex.label, 0.9)], source="test", fps=10.0,
                               class_names=tuple(explainer.class_names), draw=lambda: frame, faithfulness=scores))
        maps = json.loads(ask(sink.port, "/api/heatmaps", headers={"Authorization": f"Bearer {TOKEN}"}).body)
    finally:
        sink.close()
    mine = next(m for m in maps if m["name"] == ex.label)
    assert mine["faithfulness"]["n"] == 2
    for name in ("deletion_auc", "insertion_auc", "confidence_change"):
        assert mine["faithfulness"][name] == pytest.approx(np.mean([s[name] for s in sets]))
    assert all("faithfulness" not in m for m in maps if m["name"] != ex.label)
