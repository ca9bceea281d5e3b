"""tools.export --trunk imx500 on a PyTorch model, through Sony's PyTorch venv (MCT's PyTorch PTQ, imxconv-pt): the
trained fruit CNN ported to PyTorch (tools/verify/fruit_port.py) cut at bn4 gets a packerOut.zip that fits, a manifest
whose sensor tensor is CHW, and MCT's simulated trunk keeps its top-1 and Grad-CAM on the held-out frames.

The venv (torch linked from the workstation venv), the ported weights and the bundle (calibrated on the 15 mini train
images) are made once and cached in build/ by what makes them.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import zipfile
from pathlib import Path

import pytest
from conftest import REPO, _zoo_key, cached_build, run_python
from imx500_fixture import CALIBRATION, FRUIT_MODEL, HELD_OUT, imx500_pt_venv, pt_venv_key  # noqa: F401 (fixtures)

from edge import Explainer
from edge.explain import imx500_record
from edge.explain.bundle_check import verify_files
from edge.explain.open_bundle import read_manifest

FRUIT_TORCH = "tools/verify/torch_models.py:fruit_cnn_gap"


@pytest.fixture(scope="module")
def fruit_weights(imx500_pt_venv: Path) -> Path:  # noqa: F811
    """models/fruit.keras ported to PyTorch (tools/verify/fruit_port.py)."""
    return cached_build(REPO / "build" / f"fruit-torch-{_zoo_key()}.pth",
                        lambda path: run_python("-m", "tools.verify.fruit_port", str(FRUIT_MODEL), str(path)))


def _export(out: Path, venv: Path, weights: Path) -> subprocess.CompletedProcess[str]:
    proc = run_python("-m", "tools.export", FRUIT_TORCH, "--weights", str(weights), "--input-size", "100",
                      "--preprocess", "unit", "--target-layer", "bn4", "--classes", "Apfel,Orange,Tomate",
                      "--out", str(out), "--trunk", "imx500", "--calibration", str(CALIBRATION),
                      "--imx500-venv", str(venv), timeout=1800)
    assert proc.returncode != 0 or "(CHW on the sensor)" in proc.stdout, proc.stdout
    return proc


@pytest.fixture(scope="module")
def pt_bundle(imx500_pt_venv: Path, fruit_weights: Path) -> Path:  # noqa: F811
    """The ported fruit CNN cut at bn4, exported through Sony's PyTorch venv, calibrated on the 15 mini train images."""
    return cached_build(REPO / "build" / f"imx500-pt-fruit-{_zoo_key()}-{pt_venv_key()}",
                        lambda path: _export(path, imx500_pt_venv, fruit_weights))


def test_the_venv_has_the_workstations_torch_and_its_own_onnx(imx500_pt_venv: Path) -> None:  # noqa: F811
    """torch is linked from the workstation venv, not installed again; Sony's pins shadow the workstation's; and MCT,
    which imports TensorFlow wherever it finds one, finds none."""
    probe = ("import sys, numpy, onnx, torch, model_compression_toolkit; "
             "print(torch.__file__, onnx.__version__, numpy.__version__, 'tensorflow' in sys.modules)")
    proc = subprocess.run([str(imx500_pt_venv / "bin" / "python"), "-c", probe], capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    torch_file, onnx_version, numpy_version, tensorflow = proc.stdout.split()[-4:]
    spec = importlib.util.find_spec("torch")
    assert spec is not None and spec.origin is not None
    assert Path(torch_file).resolve() == Path(spec.origin).resolve(), torch_file
    assert (onnx_version, numpy_version, tensorflow) == ("1.17.0", "2.4.6", "False")
    assert not list((imx500_pt_venv / "lib").glob("python3*/site-packages/torch"))  # no second copy of torch


def test_pytorch_export_writes_the_sensor_trunk(pt_bundle: Path) -> None:
    manifest = read_manifest(pt_bundle)
    verify_files(pt_bundle, manifest)  # packerOut.zip, MCT's ONNX and the report are checksummed
    record = manifest.imx500
    assert record is not None and record.fits, record
    assert record.output_shape == manifest.feature_shape == (12, 12, 128)
    assert record.output_order == "CHW" and record.quantised_trunk == imx500_record.QUANTISED_TRUNK_ONNX
    assert record.input_size == (100, 100) and record.input_scale == 1 / 256
    assert record.toolchain["tpc_version"] == "4.0" and record.toolchain["converter"].startswith("imxconv-pt 3.19")
    with zipfile.ZipFile(pt_bundle / imx500_record.NETWORK) as z:
        assert 'size="128" serializationOrder="0" ordinal="0"' in z.read("dnnParams.xml").decode()
    report = json.loads((pt_bundle / imx500_record.MEMORY_REPORT).read_text())["Memory Report"]
    assert report["Fit In Chip"] is True and report["Memory Usage"] == record.memory["Memory Usage"]
    assert "packer zip successfully generated" in (pt_bundle / "imx500" / "converter.log").read_text()
    assert Explainer.load(pt_bundle, runtime="tflite_runtime").manifest.imx500 == record


def test_verify_reports_the_pytorch_trunks_simulated_fidelity(pt_bundle: Path, fruit_weights: Path,
                                                              imx500_pt_venv: Path) -> None:  # noqa: F811
    proc = run_python("-m", "tools.verify", str(pt_bundle), "--model", FRUIT_TORCH, "--weights", str(fruit_weights),
                      "--images", str(HELD_OUT), "--json", env={"EDGE_IMX500_PT_VENV": str(imx500_pt_venv)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    section = json.loads(proc.stdout)["imx500"]
    assert section["images"] == 15 and section["passed"], section
    assert section["top1_agreement"] >= 0.99 and section["mean_cam_correlation"] >= 0.99, section


def test_a_trunk_that_does_not_load_the_same_is_refused(imx500_pt_venv: Path, fruit_weights: Path,  # noqa: F811
                                                        tmp_path: Path) -> None:
    """The trunk loaded in Sony's venv is checked against the workstation's outputs before MCT runs."""
    import numpy as np

    from tools.export.imx500 import toolchain, torch_carry

    rng = np.random.default_rng(0)
    torch_carry.write(FRUIT_TORCH, fruit_weights, "bn4", tmp_path,
                      [rng.random((100, 100, 3), np.float32) for _ in range(4)])
    probe = dict(np.load(tmp_path / "probe.npz"))
    probe["y"] = probe["y"] * 1.01  # what a trunk that changed on the way would give
    np.savez(tmp_path / "probe.npz", **probe)
    with pytest.raises(toolchain.ToolchainError, match="disagrees with the workstation's"):
        toolchain.run(imx500_pt_venv, ["convert", str(tmp_path)], chain=toolchain.PYTORCH)
    assert not (tmp_path / "out").exists()  # refused before quantising
