"""tools/evaluate: the localisation measures on hand-made maps, and the command end to end on a real bundle."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import run_python, tiny_dataset

from tools.evaluate.evaluator import localise


def _mask() -> np.ndarray:
    mask = np.zeros((100, 100), bool)
    mask[:50, :50] = True  # a quarter of the frame
    return mask


def test_flat_map_scores_one_and_a_focused_map_scores_more() -> None:
    flat = localise(np.ones((4, 4), np.float32), _mask())
    assert flat.ratio == pytest.approx(1.0, abs=0.02)
    focused = np.zeros((4, 4), np.float32)
    focused[0, 0] = 1.0
    on_fruit = localise(focused, _mask())
    assert on_fruit.hit and on_fruit.ratio > 3.0
    focused_away = np.zeros((4, 4), np.float32)
    focused_away[3, 3] = 1.0
    off = localise(focused_away, _mask())
    assert not off.hit and off.ratio < 0.2


def test_zero_map_points_nowhere() -> None:
    loc = localise(np.zeros((4, 4), np.float32), _mask())
    assert loc.ratio == 0.0 and not loc.hit


@pytest.mark.slow
def test_evaluate_reports_every_measure_and_draws_the_worst(fruit_bundle: Path, tmp_path: Path) -> None:
    data = tiny_dataset(tmp_path / "data", per_class=3)
    out = tmp_path / "eval"
    proc = run_python("-m", "tools.evaluate", str(fruit_bundle), str(data), "--composite", "--json", "--out", str(out),
                      "--per-pair", "2", timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report == json.loads((out / "evaluation.json").read_text())
    assert report["data"].endswith("test")  # the held-out split, not train
    confusion = np.array(report["plain"]["confusion"])
    assert confusion.shape == (3, 3) and confusion.sum() == 9
    assert report["plain"]["accuracy"] == pytest.approx(np.trace(confusion) / 9)
    composite, pairs = report["composite"], report["two_fruit"]
    assert composite["frames"] == 18 and 0 <= composite["accuracy"] <= 1 and 0 <= composite["pointing_game"] <= 1
    assert composite["energy_in_mask_ratio"] > 0
    assert pairs["checks"] == 6 * 2 * 2  # 6 ordered class pairs x 2 frames x both fruits
    sheet = cv2.imread(str(out / "worst.png"))
    assert sheet is not None and sheet.shape[0] > 400
    table = run_python("-m", "tools.evaluate", str(fruit_bundle), str(data), "--out", str(out / "plain"), timeout=300)
    assert table.returncode == 0 and "plain accuracy" in table.stdout and "pointing" not in table.stdout


def test_evaluate_needs_no_tensorflow(fruit_bundle: Path, tmp_path: Path) -> None:
    """It runs the device's code: TensorFlow is not even importable in this run."""
    data = tiny_dataset(tmp_path / "data", per_class=1)
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "tensorflow.py").write_text("raise ImportError('tensorflow is blocked in this test')\n")
    proc = run_python("-m", "tools.evaluate", str(fruit_bundle), str(data), "--composite", "--per-pair", "1",
                      "--out", str(tmp_path / "eval"), env={"PYTHONPATH": f"{blocker}:{Path(__file__).parents[1]}"},
                      timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_evaluate_errors_are_one_line(fruit_bundle: Path, tmp_path: Path) -> None:
    proc = run_python("-m", "tools.evaluate", str(fruit_bundle), str(tmp_path / "missing"), timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == f"error: {tmp_path / 'missing'}: not a folder"


def test_before_after_sheet_shows_both_bundles(fruit_bundle: Path, tmp_path: Path) -> None:
    data = tiny_dataset(tmp_path / "data", per_class=2)
    out = tmp_path / "ba.png"
    proc = run_python("-m", "tools.evaluate.before_after", str(fruit_bundle), str(fruit_bundle), str(data),
                      "--out", str(out), "--frames", "2", "--pairs", "1", timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    sheet = cv2.imread(str(out))
    assert sheet is not None and sheet.shape[0] > 3 * 160 and sheet.shape[1] >= 3 * 160  # 3 rows x 3 tiles
