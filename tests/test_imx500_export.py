"""tools.export --trunk imx500 and tools.verify on its bundle: Sony's converter made packerOut.zip, the trunk fits the
sensor, the manifest records the sensor's tensors, and MCT's simulated trunk keeps the fruit CNN's top-1 and Grad-CAM
on held-out frames. Missing toolchain or unsupported models: one line before any TensorFlow work."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from conftest import run_python
from imx500_fixture import FRUIT_MODEL, HELD_OUT, imx500_fruit, imx500_venv  # noqa: F401 (fixtures)

from edge import BundleError, Explainer
from edge.explain import imx500_record
from edge.explain.bundle_check import verify_files
from edge.explain.open_bundle import read_manifest


def _error_line(proc: object) -> str:
    lines = proc.stderr.strip().splitlines()  # type: ignore[attr-defined]
    assert proc.returncode == 2 and lines, proc.stderr  # type: ignore[attr-defined]
    return str(lines[-1])


def test_missing_toolchain_is_one_line(tmp_path: Path) -> None:
    proc = run_python("-m", "tools.export", str(FRUIT_MODEL), "--out", str(tmp_path / "b"), "--trunk", "imx500",
                      "--calibration", str(HELD_OUT), "--imx500-venv", str(tmp_path / "no-venv"))
    line = _error_line(proc)
    assert line.startswith("error: Sony's IMX500 toolchain is not installed") and "scripts/imx500-venv" in line
    assert not (tmp_path / "b").exists()  # refused before anything was written


def test_imx500_needs_calibration_and_a_model_mct_reads(tmp_path: Path) -> None:
    proc = run_python("-m", "tools.export", str(FRUIT_MODEL), "--out", str(tmp_path / "b"), "--trunk", "imx500")
    assert "needs --calibration IMAGE_DIR" in _error_line(proc)
    proc = run_python("-m", "tools.export", str(tmp_path / "model.onnx"), "--out", str(tmp_path / "b"),
                      "--trunk", "imx500", "--calibration", str(HELD_OUT))
    assert "--trunk imx500 takes Keras models and PyTorch models given as module:callable" in _error_line(proc)
    proc = run_python("-m", "tools.export", "torchvision.models:resnet18", "--out", str(tmp_path / "b"),
                      "--trunk", "imx500", "--calibration", str(HELD_OUT), "--imx500-venv", str(tmp_path / "no-venv"))
    line = _error_line(proc)
    assert line.startswith("error: Sony's IMX500 toolchain for PyTorch is not installed") and "--pytorch" in line
    assert not (tmp_path / "b").exists()


def test_malformed_imx500_section_is_a_bundle_error(imx500_fruit: Path, tmp_path: Path) -> None:  # noqa: F811
    copy = tmp_path / "b"
    import shutil

    shutil.copytree(imx500_fruit, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["imx500"]["output_order"] = "WHC"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="output_order 'WHC'"):
        read_manifest(copy)


def test_export_writes_the_sensor_trunk(imx500_fruit: Path) -> None:  # noqa: F811
    manifest = read_manifest(imx500_fruit)
    verify_files(imx500_fruit, manifest)  # packerOut.zip, MCT's model and the report are checksummed
    record = manifest.imx500
    assert record is not None and record.fits, record
    assert record.output_shape == manifest.feature_shape == (12, 12, 128)
    assert record.input_size == (100, 100) and record.input_scale == 1 / 256  # not the model's 1/255
    assert record.output_scale > 0 and float(record.output_scale).hex().startswith("0x1.0000")  # a power of two
    assert record.toolchain["tpc_version"] == "4.0" and record.toolchain["converter"].startswith("imxconv-tf 3.19")
    with zipfile.ZipFile(imx500_fruit / imx500_record.NETWORK) as z:
        assert z.namelist(), "an empty packerOut.zip"
    report = json.loads((imx500_fruit / imx500_record.MEMORY_REPORT).read_text())["Memory Report"]
    assert report["Fit In Chip"] is True and report["Memory Usage"] == record.memory["Memory Usage"]
    assert "packer zip successfully generated" in (imx500_fruit / "imx500" / "converter.log").read_text()
    # the TFLite trunk stays: the same bundle runs on a Pi without the AI Camera
    assert Explainer.load(imx500_fruit, runtime="tflite_runtime").manifest.imx500 == record


def test_verify_reports_the_simulated_sensor_fidelity(imx500_fruit: Path, imx500_venv: Path) -> None:  # noqa: F811
    proc = run_python("-m", "tools.verify", str(imx500_fruit), "--model", str(FRUIT_MODEL), "--images",
                      str(HELD_OUT), "--limit", "60", "--json", env={"EDGE_IMX500_VENV": str(imx500_venv)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    section = json.loads(proc.stdout)["imx500"]
    assert section["images"] == len(list(HELD_OUT.rglob("*.jpg"))) == 15 and section["passed"], section
    assert section["top1_agreement"] >= 0.99 and section["mean_cam_correlation"] >= 0.99, section
    assert section["memory"]["Fit In Chip"] == "true"


CARRY = """
import sys
from pathlib import Path
import keras, numpy as np
from tools.export.imx500 import carry
keras.utils.set_random_seed(0)
x = keras.Input((16, 16, 3))
y = keras.layers.BatchNormalization(name="bn")(keras.layers.Conv2D(8, 3, activation="relu", name="conv")(x))
model = keras.Model(x, y)
carry.write(model, Path(sys.argv[1]), [np.random.default_rng(0).random((16, 16, 3), np.float32) for _ in range(4)])
"""


def test_a_trunk_that_does_not_carry_over_is_refused(imx500_venv: Path, tmp_path: Path) -> None:  # noqa: F811
    """The rebuilt trunk is checked against the Keras 3 outputs before MCT runs: a config lost on the way fails."""
    from tools.export.imx500 import toolchain

    proc = run_python("-c", CARRY, str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    spec = json.loads((tmp_path / "spec.json").read_text())
    conv = next(layer for layer in spec["layers"] if layer["name"] == "conv")
    conv["config"]["activation"] = "linear"  # what a config that does not carry over does
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    with pytest.raises(toolchain.ToolchainError, match=r"rebuilt in TensorFlow 2\.15 disagrees with the Keras 3 model"):
        toolchain.run(imx500_venv, ["convert", str(tmp_path)])
    assert not (tmp_path / "out").exists()  # refused before quantising
