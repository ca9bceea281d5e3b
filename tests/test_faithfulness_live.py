"""[faithfulness] on the camera: frames scored by a background worker that never makes the loop wait (a busy worker
skips the frame and counts it), the scores in that frame's own JSONL record and MQTT prediction message (the record
outputs hold it until they are in), running means per class on the dashboard."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from broker import Broker, Collector, retained
from browser import wait_until
from conftest import REPO, run_python
from edge_process import EdgeProcess
from http_client import ask

from edge import Explainer
from edge.http.sink import DashboardConfig, DashboardSink
from edge.records import Frame, PendingScores, Result
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
        t0 = time.perf_counter()
        offers = [worker.offer(i, frame, ex) for i in range(40)]  # far faster than 41 passes a score
        offering_s = time.perf_counter() - t0
        accepted = [(i, p) for i, p in enumerate(offers) if p is not None and p.value is None]
        for _, pending in accepted:
            assert pending.wait(60)
    finally:
        worker.close()
    assert offering_s < 1.0, f"40 offers took {offering_s:.2f} s: offer() must never wait for the worker"
    assert all(p is None for p in offers[1::2])  # only every 2nd frame is offered to the worker
    assert all(p is not None for p in offers[::2])  # and each of those gets an answer, now or later
    busy = [p for p in offers[::2] if p is not None and p.value == {"skipped": "busy"}]
    assert worker.offered == 40 and worker.skipped == len(busy) >= 1 and worker.scored == len(accepted) >= 1
    for frame_index, pending in accepted:  # each accepted frame's pending holds that frame's own scores
        scores = pending.value
        assert scores is not None and scores["frame"] == frame_index and scores["class"] == ex.label
        assert scores["passes"] == 41 and {"confidence_change", "deletion_auc", "insertion_auc"} <= set(scores)
    assert worker.class_means()[ex.label]["n"] == worker.scored


def test_close_answers_every_frame_it_took() -> None:
    """No record waits past close(): the frame being scored (or about to be) gets {"skipped": "stopped"} unless its
    scores are in; a frame offered after close gets it at once."""
    explainer = Explainer.load(FRUIT, num_threads=1)
    worker = FaithfulnessWorker(explainer, FaithfulnessConfig(enabled=True, every_n=1))
    frame = np.random.default_rng(1).integers(0, 256, (100, 100, 3), dtype=np.uint8)  # (100, 100, 3) uint8
    ex = explainer.explain(frame)
    pending = worker.offer(0, frame, ex)
    while worker._current is None:  # in the worker's hands (41 passes: it will be busy for a while)
        time.sleep(0.001)
    worker.close(timeout=0.0)
    assert pending is not None and pending.value == {"skipped": "stopped"}
    after = worker.offer(1, frame, ex)
    assert after is not None and after.value == {"skipped": "stopped"}
    queued = FaithfulnessWorker(explainer, FaithfulnessConfig(enabled=True, every_n=1))
    first = queued.offer(0, frame, ex)
    queued.close(timeout=0.0)  # taken or not yet: answered either way
    assert first is not None and first.done


def test_config_is_checked() -> None:
    assert not build_config({}).faithfulness.enabled  # off by default
    with pytest.raises(ConfigError, match="every_n"):
        build_config({"faithfulness": {"every_n": 0}})
    with pytest.raises(ConfigError, match="score"):
        build_config({"faithfulness": {"score": "margin"}})


def _check_own_scores(records: list[dict[str, Any]], every_n: int, passes: int) -> list[dict[str, Any]]:
    """Each frame due for scoring carries its own entry: its scores (their frame = the record's) or a skip reason; no
    other record carries one. Returns the scores."""
    for r in records:
        assert ("faithfulness" in r) == (r["frame"] % every_n == 0), r
    entries = [(r["frame"], r["faithfulness"]) for r in records if "faithfulness" in r]
    scored = [f for frame, f in entries if "skipped" not in f]
    assert scored, f"no record carried its scores: {entries}"
    for frame, f in entries:
        if "skipped" in f:
            assert f["skipped"] in ("busy", "timeout", "stopped"), f
        else:
            assert f["frame"] == frame and f["passes"] == passes, (frame, f)
            assert set(f) >= {"confidence_change", "drop_in_confidence", "increase_in_confidence", "class", "method"}
    return scored


def test_live_run_records_scores_in_their_frames_record(tmp_path: Path) -> None:
    config = tmp_path / "edge.toml"
    # unpaced: hundreds of frames a second, so the hold is counted in seconds here, not frames
    config.write_text("[faithfulness]\nenabled = true\nevery_n = 5\ncurves = false\nhold_frames = 100000\n"
                      "[log]\nevery_s = 0.0\non_change = false\nevery_frame = false\n")  # a log of nothing else
    proc = run_python("-m", "edge", "run", "--config", str(config), "--model", str(FRUIT), "--source", "synthetic",
                      "--max-frames", "200", "--no-display", "--stdout", "--log-dir", str(tmp_path / "log"),
                      timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    frames = [r["frame"] for r in records]
    assert frames == sorted(frames)  # held records keep their order
    scored = _check_own_scores(records, 5, 2)
    # A disk log that keeps nothing else still keeps every record that carries its scores.
    logged = read_jsonl(tmp_path / "log" / "predictions.jsonl")
    assert [r["faithfulness"] for r in logged] == scored


def test_a_stop_while_scoring_loses_no_record(tmp_path: Path) -> None:
    """SIGTERM while the worker scores (every frame due, curves on: it is always busy): every frame up to the last is
    in the log, in order, each with its own scores or the reason it has none."""
    config = tmp_path / "edge.toml"
    config.write_text("[faithfulness]\nenabled = true\nevery_n = 1\n[log]\nsave_frames = false\n"
                      "save_overlays = false\n")
    log = tmp_path / "log" / "predictions.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "edge", "run", "--config", str(config), "--model", str(FRUIT),
                             "--source", f"images:{REPO / 'samples'}", "--repeat", "--fps", "20", "--no-display",
                             "--log-dir", str(log.parent)], cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while not (log.exists() and sum(1 for r in read_jsonl(log) if "skipped" not in r["faithfulness"]) >= 2):
            assert proc.poll() is None and time.monotonic() < deadline, "no scores logged"
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr[-2000:]
    records = read_jsonl(log)
    assert [r["frame"] for r in records] == list(range(len(records)))
    _check_own_scores(records, 1, 41)


def test_mqtt_prediction_message_carries_scores(broker: Broker, tmp_path: Path) -> None:
    config = tmp_path / "edge.toml"
    config.write_text("[faithfulness]\nenabled = true\nevery_n = 5\ncurves = false\nhold_frames = 100000\n")
    sub = Collector(broker.port)
    proc = run_python("-m", "edge", "run", "--config", str(config), "--model", str(FRUIT), "--source", "synthetic",
                      "--max-frames", "200", "--no-display", "--mqtt", broker.url, "--device-id", "cam1", timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    sub.wait_for("/status", 2)
    sub.close()
    predictions = [json.loads(m.payload) for m in sub.messages if m.topic.endswith("/prediction")]
    assert all(p["frame"] % 5 == 0 for p in predictions if "faithfulness" in p)
    scored = [p["faithfulness"] for p in predictions if "skipped" not in p.get("faithfulness", {"skipped": 0})]
    # each in its own frame's message (the MQTT output holds it for its scores, like the log)
    assert scored and all("confidence_change" in f for f in scored)
    assert [f["frame"] for f in scored] == [p["frame"] for p in predictions if p.get("faithfulness") in scored]
    # Home Assistant's sensor: its retained config, and its topic carrying each set of scores (retained)
    configs = {t: json.loads(p) for t, p in retained(broker.port, "homeassistant/#").items() if p}
    sensor = configs["homeassistant/sensor/cam1/faithfulness/config"]
    assert sensor["state_topic"] == sensor["json_attributes_topic"] == "edge-explainer/cam1/faithfulness"
    assert "value_json.confidence_change" in sensor["value_template"]
    published = [json.loads(m.payload) for m in sub.messages if m.topic == sensor["state_topic"]]
    assert [{k: v for k, v in p.items() if k != "time"} for p in published] == scored


def test_dashboard_keeps_running_means_per_class() -> None:
    """The dashboard's /api/heatmaps: each class's mean scores beside its mean heatmap (from real worker scores), and
    the newest scores in every record as faithfulness_latest: the live view takes them in when they come, never
    waiting for them. The means count every scored frame, also one the view never got (its queue dropped it)."""
    explainer = Explainer.load(FRUIT, num_threads=1)
    sink = DashboardSink(DashboardConfig(enabled=True, port=0, token=TOKEN), about={"model": "fruit",
                                                                                     "classes": explainer.class_names})
    sink.open()
    frame = np.random.default_rng(0).integers(0, 256, (100, 100, 3), dtype=np.uint8)  # (100, 100, 3) uint8
    ex = explainer.explain(frame)
    worker = FaithfulnessWorker(explainer, FaithfulnessConfig(enabled=True, every_n=1))
    worker.show_on([sink])

    def shown(i: int, scoring: PendingScores | None) -> None:
        sink.handle(Result(frame=Frame(image=frame, index=i, timestamp=1000.0 + i), explanation=ex, cam=ex.cam,
                           top=[(ex.label, 0.9)], source="test", fps=10.0, class_names=tuple(explainer.class_names),
                           draw=lambda: frame, scoring=scoring))

    try:
        sets = []
        for i in (0, 2):
            pending = worker.offer(i, frame, ex)
            assert pending is not None
            shown(i, pending)  # shown at once, its scores not in yet
            assert pending.wait(60) and pending.value is not None
            sets.append(pending.value)
            shown(i + 1, None)  # the next frame's handling takes them in
            assert sink.hub.newest is not None and sink.hub.newest.record["faithfulness_latest"] == pending.value
        unseen = worker.offer(4, frame, ex)  # scored, never shown
        assert unseen is not None and unseen.wait(60) and unseen.value is not None
        sets.append(unseen.value)
        maps = json.loads(ask(sink.port, "/api/heatmaps", headers={"Authorization": f"Bearer {TOKEN}"}).body)
    finally:
        worker.close()
        sink.close()
    assert [s["frame"] for s in sets] == [0, 2, 4]
    mine = next(m for m in maps if m["name"] == ex.label)
    assert mine["faithfulness"]["n"] == 3
    for name in ("deletion_auc", "insertion_auc", "confidence_change"):
        assert mine["faithfulness"][name] == pytest.approx(np.mean([s[name] for s in sets]))
    assert all("faithfulness" not in m for m in maps if m["name"] != ex.label)


def test_the_services_browser_view_shows_the_workers_running_means() -> None:
    """edge run with [faithfulness] and the browser view: /api/heatmaps carries the scoring worker's means per class."""
    config = "[faithfulness]\nenabled = true\nevery_n = 1\n"
    with EdgeProcess(["--model", str(FRUIT), "--source", f"images:{REPO / 'samples'}", "--repeat", "--fps", "10"],
                     config=config) as edge:
        port = int(urllib.parse.urlsplit(edge.url).port or 0)

        def scored() -> list[dict[str, Any]] | None:
            listing = json.loads(ask(port, "/api/heatmaps").body)
            return [m for m in listing if m.get("faithfulness", {}).get("n", 0) >= 2] or None

        means = wait_until(scored, timeout=90)
    assert all(0.0 <= m["faithfulness"]["deletion_auc"] <= 1.0 for m in means), means


def test_the_running_means_are_read_as_a_copy() -> None:
    """HTTP threads serialise the running means while the worker's thread adds scores: they read a copy taken under
    the worker's lock, which later scores do not change."""
    explainer = Explainer.load(FRUIT, num_threads=1)
    worker = FaithfulnessWorker(explainer, FaithfulnessConfig(enabled=True, every_n=1))
    frame = np.random.default_rng(1).integers(0, 256, (100, 100, 3), dtype=np.uint8)  # (100, 100, 3) uint8
    ex = explainer.explain(frame)
    try:
        sets = []
        for i in range(2):
            pending = worker.offer(i, frame, ex)
            assert pending is not None and pending.wait(60) and pending.value is not None
            sets.append(pending.value)
            if i == 0:
                seen = worker.class_means()
    finally:
        worker.close()
    assert seen[ex.label]["n"] == 1.0 and seen[ex.label]["deletion_auc"] == sets[0]["deletion_auc"]
    assert worker.class_means()[ex.label]["n"] == 2.0


def test_only_scores_whose_record_timed_out_count_as_late() -> None:
    """The closing line's "too late for their record" counts scores that found their record gone after its hold
    ran out, not those of a frame the worker was told had stopped."""
    explainer = Explainer.load(FRUIT, num_threads=1)
    worker = FaithfulnessWorker(explainer, FaithfulnessConfig(enabled=True, every_n=1))
    frame = np.random.default_rng(0).integers(0, 256, (100, 100, 3), dtype=np.uint8)  # (100, 100, 3) uint8
    ex = explainer.explain(frame)
    try:
        for i, answer in enumerate(("timeout", "stopped", "timeout")):
            pending = worker.offer(i, frame, ex)
            assert pending is not None and pending.value is None
            pending.resolve({"skipped": answer})  # the record went first, as a hold's end or a stop does
            deadline = time.monotonic() + 60
            while worker.scored < i + 1 and time.monotonic() < deadline:
                time.sleep(0.01)
            while worker._busy and time.monotonic() < deadline:  # the score's own answer comes after the count
                time.sleep(0.01)
    finally:
        worker.close()
    assert worker.scored == 3 and worker.late == 2
