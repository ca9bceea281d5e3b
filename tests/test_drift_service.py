"""`edge run --drift`: every JSONL record carries the monitor's state; a learned baseline is kept beside the log and
reused after a restart; a baseline of another model is refused in one line, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest

from edge.explain.drift_baseline import Baseline
from edge.service.cli import main
from tools.data.drift_scenarios import load_images, scenario

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


def test_a_moved_camera_alerts_in_the_log_with_a_line_of_its_own(tmp_path: Path) -> None:
    """A baseline from normal frames (python -m edge baseline), then the service on frames of a moved camera."""
    images = load_images(REPO / "samples")
    for name, kind, normal, after in (("normal", "normal", 300, 0), ("moved", "moved", 0, 300)):
        (tmp_path / name).mkdir()
        for i, frame in enumerate(scenario(images, kind, normal, after, seed=3)):
            cv2.imwrite(str(tmp_path / name / f"{i:04d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    baseline = tmp_path / "baseline.npz"
    assert main(["baseline", "--source", f"images:{tmp_path / 'normal'}", "--frames", "300",
                 "--out", str(baseline)]) == 0
    (tmp_path / "edge.toml").write_text(f"[drift]\nbaseline = '{baseline}'\nhold = 20\n")
    log = tmp_path / "log"
    assert main(["run", "--config", str(tmp_path / "edge.toml"), "--drift", "--source", f"images:{tmp_path / 'moved'}",
                 "--fps", "0", "--log-dir", str(log), "--log-every-frame", "--no-display"]) == 0
    records = [json.loads(line) for line in (log / "predictions.jsonl").read_text().splitlines()]
    events = [r for r in records if "drift_event" in r]
    frames = [r for r in records if "label" in r]
    assert len(frames) == 300 and frames[0]["drift"]["state"] == "ok"
    assert [e["drift_event"] for e in events] == ["alert"], events
    assert events[0]["drift"]["kind"] == "explanation"
    assert frames[-1]["drift"]["state"] == "alert" and frames[-1]["drift"]["distance"] >= 0.7
