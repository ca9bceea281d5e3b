"""The workstation commands as a user runs them: export, --list-layers, verify, and their one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import run_python


def _write_images(directory: Path, frames: np.ndarray) -> None:
    directory.mkdir(parents=True)
    for i, frame in enumerate(frames):
        cv2.imwrite(str(directory / f"img_{i}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))


def test_list_layers_marks_the_default_target(zoo: Path) -> None:
    proc = run_python("-m", "tools.export", str(zoo / "models" / "fruit.keras"), "--list-layers")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:4] == [
        "usable target layers (3; * = the default):",
        "    conv4                            Conv2D                   (8, 8, 128)",
        "    bn4                              BatchNormalization       (8, 8, 128)",
        "  * pool4                            MaxPooling2D             (4, 4, 128)",
    ]
    assert lines[4].startswith("not usable (9 layers; --all")
    assert lines[5].startswith("  9 layer(s) (conv1 ... pool3): a Conv2D layer would fall into the head")


def test_verify_reports_parity_and_writes_a_contact_sheet(zoo: Path, tmp_path: Path) -> None:
    with np.load(zoo / "refs" / "fruit_bn.npz") as ref:
        _write_images(tmp_path / "images", ref["frames"])
    sheet = tmp_path / "sheet.png"
    proc = run_python("-m", "tools.verify", str(zoo / "bundles" / "fruit_bn"), "--model",
                      str(zoo / "models" / "fruit.keras"), "--images", str(tmp_path / "images"), "--json",
                      "--sheet", str(sheet))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    for score in ("logit", "probability"):
        m = report["scores"][score]
        assert m["images"] == 3 and m["top1_agreement"] == 1.0
        assert m["max_rel_cam_raw_diff"] <= 1e-4 and m["max_probability_diff"] <= 1e-5
    image = cv2.imread(str(sheet))
    assert image is not None and image.shape[0] > 3 * 100 and image.shape[1] >= 3 * 160


def test_verify_int8_reports_agreement(zoo: Path, tmp_path: Path) -> None:
    with np.load(zoo / "refs" / "fruit_int8.npz") as ref:
        _write_images(tmp_path / "images", ref["frames"])
    proc = run_python("-m", "tools.verify", str(zoo / "bundles" / "fruit_int8"), "--model",
                      str(zoo / "models" / "fruit.keras"), "--images", str(tmp_path / "images"), "--json",
                      "--sheet", str(tmp_path / "sheet.png"))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["features"] == "int8"
    assert report["scores"]["logit"]["top1_agreement"] == 1.0
    assert report["scores"]["logit"]["mean_heatmap_correlation"] > 0.8


UNSUPPORTED = """
import keras, sys
model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(8, 3, name="conv"),
    keras.layers.Flatten(name="flatten"), keras.layers.LayerNormalization(name="norm"),
    keras.layers.Dense(2, activation="softmax", name="out")])
model.save(sys.argv[1])
"""


def test_unsupported_head_layer_is_a_one_line_error(tmp_path: Path) -> None:
    model = tmp_path / "unsupported.keras"
    assert run_python("-c", UNSUPPORTED, str(model)).returncode == 0
    proc = run_python("-m", "tools.export", str(model), "--out", str(tmp_path / "bundle"))
    assert proc.returncode == 2
    error = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "Traceback" not in proc.stderr
    assert "'norm' (LayerNormalization)" in error[0] and "supported: MaxPooling2D" in error[0]


def test_export_errors_name_the_problem(zoo: Path, tmp_path: Path) -> None:
    fruit = str(zoo / "models" / "fruit.keras")
    cases = [
        (["--classes", "Apfel,Orange"], "2 class names given but the model has 3 outputs"),
        (["--target-layer", "nonexistent"], "'nonexistent' is not on the path"),
        (["--target-layer", "dense"], "must be a 4-D feature map"),
        (["--preprocess", "wobbly"], "expected a preset"),
        (["--quantize", "int8"], "needs --calibration"),
    ]
    for extra, expected in cases:
        proc = run_python("-m", "tools.export", fruit, "--out", str(tmp_path / "b"), "--no-check", *extra)
        assert proc.returncode == 2, (extra, proc.stderr)
        assert expected in proc.stderr, (extra, proc.stderr[-500:])
    missing = run_python("-m", "tools.export", str(tmp_path / "missing.keras"), "--out", str(tmp_path / "b"))
    assert missing.returncode == 2 and "no such model file" in missing.stderr


@pytest.mark.parametrize("method", ["hirescam", "cam"])
def test_verify_checks_any_method(zoo: Path, tmp_path: Path, method: str) -> None:
    """tools/verify --method: the edge method against its TensorFlow formula; cam only where it is defined."""
    with np.load(zoo / "refs" / "mobilenet_gap.npz") as ref:
        _write_images(tmp_path / "images", ref["frames"])
    args = ["--images", str(tmp_path / "images"), "--json", "--method", method, "--sheet", str(tmp_path / "s.png")]
    proc = run_python("-m", "tools.verify", str(zoo / "bundles" / "mobilenet_gap"), "--model",
                      str(zoo / "models" / "mobilenet_gap.keras"), *args)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert report["method"] == method and report["passed"]
    assert all(m["max_rel_cam_raw_diff"] <= 1e-4 for m in report["scores"].values())
    if method == "cam":
        with np.load(zoo / "refs" / "fruit_bn.npz") as ref:
            _write_images(tmp_path / "fruit", ref["frames"])
        bad = run_python("-m", "tools.verify", str(zoo / "bundles" / "fruit_bn"), "--model",
                         str(zoo / "models" / "fruit.keras"), "--images", str(tmp_path / "fruit"), "--method", "cam")
        assert bad.returncode == 2 and "Traceback" not in bad.stderr
        assert "global average pooling" in bad.stderr.strip().splitlines()[-1] or "cam needs" in bad.stderr
