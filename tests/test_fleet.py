"""The fleet view: twenty simulated cameras (the real MQTT sink, in threads) publish to one real Mosquitto, and
`tools.fleet watch` counts every message and draws the contact sheet and the per-class heatmaps."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
from broker import Broker
from conftest import REPO, run_python

from tools.fleet.state import Fleet

DEVICES = 20
FRAMES = 30


def _prediction(frame: int, label: str, heat: list[list[float]]) -> bytes:
    probabilities = {"Apfel": 0.1, "Orange": 0.1, "Tomate": 0.1} | {label: 0.8}
    return json.dumps({"frame": frame, "label": label, "probabilities": probabilities, "heatmap": heat}).encode()


def test_fleet_state_aggregates_per_device_and_class() -> None:
    fleet = Fleet("edge-explainer")
    left = [[1.0, 0.0], [1.0, 0.0]]
    right = [[0.0, 1.0], [0.0, 1.0]]
    fleet.feed("edge-explainer/cam1/status", b"online", now=0.0)
    fleet.feed("edge-explainer/cam1/prediction", _prediction(0, "Apfel", left), now=1.0)
    fleet.feed("edge-explainer/cam1/prediction", _prediction(1, "Apfel", right), now=2.0)
    fleet.feed("edge-explainer/cam2/prediction", _prediction(0, "Orange", right), now=3.0)
    fleet.feed("edge-explainer/cam2/prediction", b"{not json", now=4.0)  # counted as unreadable, not fatal
    fleet.feed("edge-explainer/cam2/status", b"offline", now=5.0)
    fleet.feed("other/cam3/prediction", _prediction(0, "Apfel", left))  # outside the prefix: ignored
    cam1, cam2 = fleet.devices["cam1"], fleet.devices["cam2"]
    assert set(fleet.devices) == {"cam1", "cam2"} and fleet.bad == 1 and fleet.total == 6
    assert cam1.online is True and cam2.online is False
    assert cam1.class_counts == {"Apfel": 2} and cam1.frames == {0, 1}
    mean = cam1.mean_heatmap("Apfel")
    assert mean is not None and np.allclose(mean, 0.5)
    assert cam2.mean_heatmap("Apfel") is None and np.allclose(cam2.mean_heatmap("Orange"), right)  # type: ignore[arg-type]
    assert fleet.rate == 5 / 5.0  # six live messages over five seconds
    table = fleet.table()
    assert "cam2" in table and "OFFLINE" in table and "Apfel:2" in table


def test_twenty_cameras_one_broker_and_the_fleet_watcher(broker: Broker, tmp_path: Path) -> None:
    out = tmp_path / "fleet"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    watcher = subprocess.Popen([sys.executable, "-m", "tools.fleet", "watch", broker.url, "--out", str(out),
                                "--idle-exit", "3", "--duration", "240"], cwd=REPO, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert watcher.stderr is not None
        for line in watcher.stderr:  # wait until it has subscribed
            if "watching" in line:
                break
        sim = run_python("-m", "tools.fleet", "simulate", broker.url, "--devices", str(DEVICES), "--frames",
                         str(FRAMES), "--fps", "0", timeout=300)
        assert sim.returncode == 0, sim.stderr[-2000:]
        stdout, stderr = watcher.communicate(timeout=120)
    finally:
        watcher.kill()
    assert watcher.returncode == 0, stderr[-2000:]
    print(sim.stdout.strip().splitlines()[-1])
    print(stdout.strip().splitlines()[-1])
    summary = json.loads((out / "summary.json").read_text())
    devices = summary["devices"]
    assert sorted(devices) == [f"sim-{i:02d}" for i in range(DEVICES)]
    for name, d in devices.items():
        assert d["predictions"] == FRAMES, (name, d)  # every frame of every camera, no duplicate counted twice
        assert d["messages"]["prediction"] == d["messages"]["overlay"] == FRAMES, (name, d["messages"])
        assert d["online"] is False and d["messages"]["stats"] >= 1  # each camera said offline when it closed
        assert sum(d["class_counts"].values()) == FRAMES
    assert summary["unreadable"] == 0
    published = int(re.search(r"(\d+) messages published", sim.stdout).group(1))  # type: ignore[union-attr]
    # the watcher got every one, plus each camera's online and offline status
    assert summary["messages"] >= published + 2 * DEVICES
    sheet = cv2.imread(str(out / "fleet.png"))
    assert sheet is not None and sheet.shape[1] == 5 * 200 and sheet.shape[0] == 30 + 4 * (200 + 22)
    for i in range(DEVICES):
        figure = cv2.imread(str(out / f"heatmaps-sim-{i:02d}.png"))
        assert figure is not None and figure.shape[1] == 4 * 160  # latest overlay + one map per class
