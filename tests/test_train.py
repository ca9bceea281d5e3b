"""tools/train end to end on a tiny real dataset (TensorFlow in subprocesses); the guidance loss on hand-made maps."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest
from conftest import run_python, tiny_dataset

pytestmark = pytest.mark.slow

TINY = ("--epochs", "1", "--samples-per-epoch", "64", "--valid-samples", "32", "--batch-size", "32")


def _train(data: Path, out: Path, *extra: str) -> dict[str, object]:
    proc = run_python("-m", "tools.train", str(data), "--out", str(out), *TINY, *extra)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "epochs: 100%" in proc.stderr  # the progress bar ran to the end
    return json.loads(out.with_suffix(".summary.json").read_text())


def test_train_writes_model_plot_and_summary_reproducibly(tmp_path: Path) -> None:
    data = tiny_dataset(tmp_path / "data", per_class=4)
    first = _train(data, tmp_path / "a" / "model.keras", "--guide", "masks", "--seed", "3")
    assert first["class_names"] == ["Apfel", "Orange", "Tomate"]
    assert first["target_layer"] == "pool4" and first["best_epoch"] == 1
    (row,) = first["history"]  # type: ignore[misc]
    assert 0 < row["train_guide"] <= 1 and 0 <= row["val_pointing"] <= 1 and row["train_loss"] > 0
    before = first["before_training"]["val_guide"]  # type: ignore[index]
    assert row["val_guide"] < before, (row, before)  # one guided epoch already pulls the maps onto the masks
    plot = cv2.imread(str(tmp_path / "a" / "model.history.png"))
    assert plot is not None and plot.shape[1] > 600
    check = run_python("-c", "import sys, keras; m = keras.models.load_model(sys.argv[1]); print(m.outputs[0].shape)",
                       str(tmp_path / "a" / "model.keras"))
    assert check.returncode == 0 and "(None, 3)" in check.stdout, check.stderr[-2000:]
    again = _train(data, tmp_path / "b" / "model.keras", "--guide", "masks", "--seed", "3")
    # Same seed, same numbers (to float noise: TensorFlow's CPU reductions may split work differently under load).
    assert again["history"][0] == pytest.approx(row, rel=1e-4)  # type: ignore[index]
    other = _train(data, tmp_path / "c" / "model.keras", "--seed", "4", "--arch", "fruitcnn-gap")
    assert other["history"] != first["history"] and other["target_layer"] == "bn4"
    assert other["history"][0]["train_guide"] == 0  # type: ignore[index]  # no guidance asked for


def test_guidance_loss_prefers_maps_inside_the_mask() -> None:
    script = """
import numpy as np, tensorflow as tf
from tools.train import guidance
mask = np.zeros((1, 4, 4, 1), np.float32); mask[0, :2, :2, 0] = 1
def cost(m):
    return float(guidance.outside_share(tf.constant(m), tf.constant(mask), tf.constant([[True]])))
inside = np.zeros_like(mask); inside[0, 0, 0, 0] = 1
outside = np.zeros_like(mask); outside[0, 3, 3, 0] = 1
print(cost(inside), cost(inside + outside), cost(outside), cost(np.zeros_like(mask)), cost(-inside), cost(5 * inside))
hits, count = guidance.pointing_hits(tf.constant(2 * inside + outside), tf.constant(mask), tf.constant([[True]]))
print(float(hits), float(count))
"""
    proc = run_python("-c", script)
    assert proc.returncode == 0, proc.stderr[-2000:]
    costs, pointing = (list(map(float, line.split())) for line in proc.stdout.strip().splitlines()[-2:])
    inside, half, outside, zero, negative_inside, scaled = costs
    assert inside == pytest.approx(0.0, abs=1e-5) and scaled == pytest.approx(0.0, abs=1e-5)  # scale-free
    assert inside < half < outside and inside < zero < outside  # an all-zero map does not dodge the penalty
    assert negative_inside > zero  # a fruit the map calls negative costs more than no map at all
    assert pointing == [1.0, 1.0]


def test_train_errors_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    proc = run_python("-m", "tools.train", str(tmp_path / "empty"), "--out", str(tmp_path / "m.keras"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == f"error: {tmp_path / 'empty'}: no class folders (expected one " \
        "folder per class, e.g. Apfel/ Orange/ Tomate/)"


def test_train_mobilenetv2_guided(tmp_path: Path) -> None:
    data = tiny_dataset(tmp_path / "data", per_class=2)
    summary = _train(data, tmp_path / "m" / "model.keras", "--arch", "mobilenetv2", "--guide", "masks")
    assert summary["target_layer"] == "out_relu" and summary["class_names"] == ["Apfel", "Orange", "Tomate"]
    assert 0 < summary["history"][0]["train_guide"] <= 1  # type: ignore[index]


def test_the_ablation_terms_on_hand_made_cases() -> None:
    """RRR, GAIN and consistency (tools/train/guidance.py) each score a hand-made right case below a wrong one."""
    script = """
import numpy as np, tensorflow as tf
from tools.train import guidance
fruit = np.zeros((1, 8, 8, 1), np.float32); fruit[0, 2:6, 2:6] = 1
g_in = np.zeros((1, 8, 8, 3), np.float32); g_in[0, 3, 3] = 1          # input gradient on the fruit
g_out = np.zeros((1, 8, 8, 3), np.float32); g_out[0, 0, 0] = 1        # ... and on the background
print(float(guidance.rrr_penalty(tf.constant(g_in), tf.constant(fruit))),
      float(guidance.rrr_penalty(tf.constant(g_out), tf.constant(fruit))))
x = np.ones((1, 8, 8, 3), np.float32)
cam = np.zeros((1, 4, 4, 1), np.float32); cam[0, 0, 0, 0] = 1          # the map points at the top-left cell
erased = guidance.gain_erased(tf.constant(x), tf.constant(cam), tf.constant([[True]])).numpy()
print(float(erased[0, 0, 0, 0]), float(erased[0, 7, 7, 0]))
present = tf.constant([[True, False]])
confident = tf.constant([[5.0, -5.0]]); erased_ok = tf.constant([[-5.0, 5.0]])
print(float(guidance.gain_mining_loss(erased_ok, present)), float(guidance.gain_mining_loss(confident, present)))
left = np.zeros((1, 4, 4, 1), np.float32); left[0, :, 0] = 1
right = left[:, :, ::-1].copy()
print(float(guidance.consistency_loss(tf.constant(left), tf.constant(right), tf.constant([[True]]))),
      float(guidance.consistency_loss(tf.constant(left), tf.constant(left), tf.constant([[True]]))))
"""
    proc = run_python("-c", script)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rrr, gain_x, gain_loss, consistency = (list(map(float, line.split()))
                                           for line in proc.stdout.strip().splitlines()[-4:])
    assert rrr[0] == 0.0 and rrr[1] == pytest.approx(3.0)  # only gradients off the fruit cost, squared
    assert gain_x[0] < 0.1 and gain_x[1] > 0.9  # the attended corner is erased, the far corner kept
    assert gain_loss[0] < 0.01 < 0.99 < gain_loss[1]  # still confident on the erased image: costly
    assert consistency[0] == pytest.approx(0.0) and consistency[1] > 0.1  # a mirror-consistent map costs nothing


@pytest.mark.parametrize("guide", ["rrr", "gain", "consistency"])
def test_train_with_each_ablation_guide(tmp_path: Path, guide: str) -> None:
    data = tiny_dataset(tmp_path / "data", per_class=2)
    summary = _train(data, tmp_path / guide / "model.keras", "--arch", "fruitcnn-gap", "--guide", guide)
    (row,) = summary["history"]  # type: ignore[misc]
    assert row["train_guide"] > 0 and 0 < row["val_guide"] <= 1  # the term is computed; validation is comparable


def test_ablation_trains_exports_evaluates_and_resumes(tmp_path: Path) -> None:
    """tools.ablation end to end with one tiny arm: the table holds the arm's measured figures, and a second run reuses
    the finished arm instead of training it again."""
    data = tiny_dataset(tmp_path / "data", per_class=3)
    out = tmp_path / "docs" / "ablation"
    args = ("-m", "tools.ablation", str(data), "--work", str(tmp_path / "work"), "--out", str(out), "--epochs", "1",
            "--samples-per-epoch", "64", "--valid-samples", "32", "--batch-size", "32", "--per-pair", "1",
            "--arm", "tiny-masks=fruitcnn-gap,masks,1")
    first = run_python(*args, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    report = json.loads(out.with_suffix(".json").read_text())
    (row,) = report["arms"]
    assert row["arm"] == "tiny-masks" and row["guide"] == "masks" and row["train_seconds"] > 0
    evaluation = json.loads((tmp_path / "work" / "tiny-masks" / "eval" / "evaluation.json").read_text())
    assert row["pointing_game"] == evaluation["composite"]["pointing_game"]
    assert row["two_fruit_discrimination"] == evaluation["two_fruit"]["discrimination"]
    markdown = out.with_suffix(".md").read_text()
    assert f"| tiny-masks | fruitcnn-gap | masks (1) | {row['plain_accuracy']:.1%} |" in markdown
    model = tmp_path / "work" / "tiny-masks" / "model.keras"
    trained_at = model.stat().st_mtime_ns
    again = run_python(*args, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert model.stat().st_mtime_ns == trained_at  # resumed: not trained again
    assert json.loads(out.with_suffix(".json").read_text()) == report
    bad = run_python("-m", "tools.ablation", str(data), "--arm", "nonsense")
    assert bad.returncode == 2 and "expected NAME=ARCH,GUIDE,WEIGHT" in bad.stderr and "Traceback" not in bad.stderr
