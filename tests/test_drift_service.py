"""`edge run --drift`: every JSONL record carries the monitor's state; a learned baseline is kept beside the log and
reused after a restart; a baseline of another model is refused in one line, exit 2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from broker import Broker, Collector, retained
from browser import chromium_driver, wait_until
from edge_process import EdgeProcess
from ha_fixture import ha_judge, ha_python  # noqa: F401 (fixture)
from numpy.typing import NDArray

from edge.explain.drift_baseline import Baseline
from edge.http.board import heatmap_png
from edge.service.cli import main
from tools.data.drift_scenarios import load_images, scenario
from tools.fleet.state import Fleet

REPO = Path(__file__).resolve().parent.parent


def _run(tmp_path: Path, *extra: str) -> list[dict[str, object]]:
    config = tmp_path / "edge.toml"
    config.write_text("[drift]\nlearn_frames = 15\n")
    log = tmp_path / "log"
    assert main(["run", "--config", str(config), "--drift", "--source", f"images:{REPO / 'samples'}", "--repeat",
                 "--fps", "0", "--max-frames", "40", "--log-dir", str(log), "--log-every-frame", "--no-display",
                 *extra]) == 0
    lines = (log / "predictions.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_records_carry_drift_and_a_restart_does_not_relearn(tmp_path: Path) -> None:
    first = [r["drift"]["state"] for r in _run(tmp_path)]  # type: ignore[index]
    assert first[0] == "learning" and first[-1] == "ok" and set(first) == {"learning", "ok"}
    learned = tmp_path / "log" / "drift-baseline.npz"
    assert Baseline.load(learned).counts.sum() == 15
    again = [r["drift"]["state"] for r in _run(tmp_path)][40:]  # type: ignore[index]
    assert again and set(again) == {"ok"}


def test_a_baseline_of_another_model_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _run(tmp_path)
    other = Baseline.load(tmp_path / "log" / "drift-baseline.npz")
    other.model_sha256 = "f" * 64
    other.save(tmp_path / "other.npz")
    (tmp_path / "edge.toml").write_text(f"[drift]\nbaseline = '{tmp_path / 'other.npz'}'\n")
    code = main(["run", "--config", str(tmp_path / "edge.toml"), "--drift", "--source", f"images:{REPO / 'samples'}",
                 "--max-frames", "3", "--no-display", "--stdout"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("edge: error: ") and "not this model" in err
    assert main(["run", "--config", str(tmp_path / "edge.toml"), "--drift", "--check-config"]) == 2
    assert "not this model" in capsys.readouterr().err.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def moved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(a folder of a moved camera's frames, a baseline from python -m edge baseline over normal frames)."""
    tmp = tmp_path_factory.mktemp("drift")
    images = load_images(REPO / "samples")
    for name, kind, normal, after in (("normal", "normal", 300, 0), ("moved", "moved", 0, 300)):
        (tmp / name).mkdir()
        for i, frame in enumerate(scenario(images, kind, normal, after, seed=3)):
            cv2.imwrite(str(tmp / name / f"{i:04d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    baseline = tmp / "baseline.npz"
    assert main(["baseline", "--source", f"images:{tmp / 'normal'}", "--frames", "300", "--out", str(baseline)]) == 0
    return tmp / "moved", baseline


def _run_moved(tmp_path: Path, moved: tuple[Path, Path], *extra: str) -> Path:
    frames, baseline = moved
    (tmp_path / "edge.toml").write_text(f"[drift]\nbaseline = '{baseline}'\nhold = 20\n")
    log = tmp_path / "log"
    assert main(["run", "--config", str(tmp_path / "edge.toml"), "--drift", "--source", f"images:{frames}",
                 "--fps", "0", "--log-dir", str(log), "--log-every-frame", "--no-display", *extra]) == 0
    return log


def test_a_moved_camera_alerts_in_the_log_with_a_line_of_its_own(tmp_path: Path, moved: tuple[Path, Path]) -> None:
    log = _run_moved(tmp_path, moved)
    records = [json.loads(line) for line in (log / "predictions.jsonl").read_text().splitlines()]
    events = [r for r in records if "drift_event" in r]
    frames = [r for r in records if "label" in r]
    assert len(frames) == 300 and frames[0]["drift"]["state"] == "ok"
    assert [e["drift_event"] for e in events] == ["alert"], events
    assert events[0]["drift"]["kind"] == "explanation"
    assert frames[-1]["drift"]["state"] == "alert" and frames[-1]["drift"]["distance"] >= 0.7


def test_drift_over_mqtt_and_home_assistant(tmp_path: Path, moved: tuple[Path, Path], broker: Broker) -> None:
    """A retained state topic, a binary_sensor (device_class problem) reading it, and an event entity's message."""
    sub = Collector(broker.port)
    _run_moved(tmp_path, moved, "--mqtt", broker.url, "--device-id", "cam7")
    sub.wait_for("/drift/event", 1)
    sub.close()
    kept = retained(broker.port, "#")
    state = json.loads(kept["edge-explainer/cam7/drift"])
    assert state["state"] == "alert" and state["kind"] == "explanation" and state["cause"] and state["class"]
    sensor = json.loads(kept["homeassistant/binary_sensor/cam7/drift/config"])
    assert sensor["device_class"] == "problem" and sensor["state_topic"] == "edge-explainer/cam7/drift"
    assert sensor["json_attributes_topic"] == sensor["state_topic"]
    event = json.loads(kept["homeassistant/event/cam7/drift_event/config"])
    fired = [json.loads(m.payload) for m in sub.on("/drift/event")]
    assert event["state_topic"] == "edge-explainer/cam7/drift/event"
    assert [f["event_type"] for f in fired] == ["alert"] and fired[0]["event_type"] in event["event_types"]


def test_home_assistants_own_code_accepts_the_drift_entities(tmp_path: Path, moved: tuple[Path, Path], broker: Broker,
                                                            ha_python: str) -> None:  # noqa: F811
    """HA's own MQTT code (tests/ha_check.py, HA 2024.3.3) on the binary_sensor and the event entity, fed the state and
    event messages of a real alert."""
    sub = Collector(broker.port)
    _run_moved(tmp_path, moved, "--mqtt", broker.url, "--device-id", "cam7")
    sub.wait_for("/drift/event", 1)
    sub.close()
    configs = {t: json.loads(p) for t, p in retained(broker.port, "homeassistant/#").items() if p}
    results = ha_judge(ha_python, configs, sub.messages)["results"]
    assert {t: r["error"] for t, r in results.items() if r["error"]} == {}
    problem = results["homeassistant/binary_sensor/cam7/drift/config"]
    assert problem["entity_id"] == problem["entity_id_current"] == "binary_sensor.cam7_drift"
    assert problem["state"] == "on" and {"class", "distance", "cause"} <= set(problem["attributes"])
    fired = results["homeassistant/event/cam7/drift_event/config"]
    assert fired["entity_id"] == fired["entity_id_current"] == "event.cam7_drift_event"
    assert fired["state"]["event_type"] == "alert" and {"class", "distance", "cause"} <= set(fired["state"])


def test_fleet_watch_shows_drift_with_cameras_in_alert_first() -> None:
    fleet = Fleet("edge-explainer")
    fleet.feed("edge-explainer/aaa/drift", json.dumps({"state": "ok", "distance": 0.2}).encode(), now=0.0)
    alert = {"state": "alert", "distance": 1.4, "kind": "explanation", "class": "Apfel", "cause": "looking elsewhere"}
    fleet.feed("edge-explainer/zzz/drift", json.dumps(alert).encode(), now=1.0)
    fleet.feed("edge-explainer/mmm/status", b"online", now=2.0)
    rows = fleet.table().splitlines()[2:5]
    assert [r.split()[0] for r in rows] == ["zzz", "aaa", "mmm"]
    assert "ALERT Apfel: looking elsewhere" in rows[0] and " ok " in rows[1] and " - " in rows[2]
    assert fleet.summary()["devices"]["zzz"]["drift"]["state"] == "alert"


# Per class on the drift panel: {map: [width, height, RGBA...]} of each image as the page decoded it, read back
# through a canvas in one script (the panel is redrawn every few seconds); null until every image has loaded.
PANEL_PIXELS = """
const out = {};
for (const li of document.querySelectorAll("#drift-maps li")) {
  const maps = out[li.dataset.class] = {};
  for (const img of li.querySelectorAll("img")) {
    if (!img.complete || !img.naturalWidth) return null;
    const c = document.createElement("canvas");
    c.width = img.naturalWidth; c.height = img.naturalHeight;
    const g = c.getContext("2d"); g.drawImage(img, 0, 0);
    maps[img.dataset.map] = [c.width, c.height, Array.from(g.getImageData(0, 0, c.width, c.height).data)];
  }
}
return Object.keys(out).length ? out : null;
"""


def _panel(browser: Any) -> dict[str, dict[str, NDArray[np.uint8]]] | None:
    """Class name -> map ("baseline", "current") -> (h, w, 3) uint8 RGB as shown, once every class shows both."""
    shown = browser.execute_script(PANEL_PIXELS)
    if not shown or any(set(maps) != {"baseline", "current"} for maps in shown.values()):
        return None
    return {name: {m: np.array(rgba, np.uint8).reshape(h, w, 4)[:, :, :3] for m, (w, h, rgba) in maps.items()}
            for name, maps in shown.items()}


def test_the_dashboard_shows_the_alert_and_each_class_baseline_map_beside_the_current(
        tmp_path: Path, moved: tuple[Path, Path]) -> None:
    """Debian's Chromium on the browser view of a moved camera: no banner at first, then the alert's banner; per
    class the baseline's mean map (exactly the baseline file's, drawn as the mean heatmaps are) beside the running
    one, which the move has changed."""
    frames, baseline = moved
    config = f"[drift]\nenabled = true\nbaseline = '{baseline}'\nhold = 20\n"
    browser: Any = chromium_driver(tmp_path / "profile")
    try:
        with EdgeProcess(["--source", f"images:{frames}", "--repeat", "--fps", "10"], config=config) as edge:
            browser.get(edge.url)
            banner = browser.find_element("id", "drift-banner")
            assert not banner.is_displayed()
            wait_until(lambda: banner.is_displayed() or None, timeout=120)
            assert banner.text.startswith("Explanation drift (") and "of its threshold" in banner.text
            panel = wait_until(lambda: _panel(browser), timeout=30)
            assert panel is not None
            base = Baseline.load(baseline)
            assert sorted(panel) == sorted(n for n, c in zip(base.class_names, base.counts, strict=True) if c > 0)
            for k, name in enumerate(base.class_names):
                expected = cv2.cvtColor(cv2.imdecode(np.frombuffer(heatmap_png(
                    (base.mean_maps[k] / base.mean_maps[k].max()).astype(np.float32)) or b"", np.uint8),
                    cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
                shown, now = panel[name]["baseline"], panel[name]["current"]
                assert np.abs(shown.astype(int) - expected).max() <= 2, name  # the baseline's own map
                assert np.abs(now.astype(int) - shown).mean() > 5, name  # the moved camera's map is another
    finally:
        browser.quit()
