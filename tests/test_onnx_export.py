"""ONNX front end: torchvision models and the fruit CNN written by `torch.onnx.export(..., dynamo=False)` and exported
through `python -m tools.export MODEL.onnx` give the device the same Grad-CAM, top class and probabilities as the
original PyTorch model (torch autograd and pytorch-grad-cam); bad files and heads are one-line errors.

Models, bundles and references come from `python -m tools.verify.onnx_zoo` (a subprocess, cached under build/ by
content); the edge side runs here with the real TFLite interpreter and never imports torch or onnx.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, run_python

from edge import Explainer

CASES = ["resnet18", "shufflenet", "mobilenet_v3_small", "fruit"]


def _key() -> str:
    digest = hashlib.sha256()
    files = [*REPO.glob("tools/export/**/*.py"), *REPO.glob("tools/verify/torch_*.py"),
             *REPO.glob("tools/verify/onnx_*.py"),
             *(REPO / "edge" / n for n in ("bundle.py", "head.py", "head_ops.py", "activations.py"))]
    for path in sorted(files):
        digest.update(str(path.relative_to(REPO)).encode() + path.read_bytes())
    return digest.hexdigest()[:16]


@pytest.fixture(scope="session")
def onnx_zoo() -> Path:
    for package in ("torch", "litert_torch", "onnx", "onnx2torch", "onnxruntime"):
        pytest.importorskip(package, reason="the ONNX front end's tests need requirements-torch.txt")
    out = REPO / "build" / f"onnxzoo-{_key()}"
    if not out.exists():
        partial = out.with_name(f"{out.name}.partial-{os.getpid()}")
        proc = run_python("-m", "tools.verify.onnx_zoo", str(partial), timeout=1800)
        assert proc.returncode == 0, f"tools.verify.onnx_zoo failed:\n{proc.stderr[-4000:]}"
        try:
            partial.rename(out)
        except OSError:  # another run finished first
            shutil.rmtree(partial, ignore_errors=True)
    return out


def _ref(zoo: Path, case: str) -> dict[str, np.ndarray]:
    with np.load(zoo / "refs" / f"{case}.npz") as npz:
        return {name: npz[name] for name in npz.files}


def _assert_close_maps(actual: np.ndarray, expected: np.ndarray) -> None:
    assert np.abs(expected).max() > 0, "a degenerate reference would make this test vacuous"
    assert np.abs(actual - expected).max() <= 1e-4 * np.abs(expected).max()


@pytest.mark.parametrize("case", CASES)
def test_gradcam_equals_pytorch_grad_cam_on_the_original_model(onnx_zoo: Path, case: str) -> None:
    ref = _ref(onnx_zoo, case)
    ex = Explainer.load(onnx_zoo / "bundles" / case)
    if case != "fruit":  # the tiny random-init models could give one class for all: their maps would still differ
        assert len(set(ref["class_index"].tolist())) > 1, "one class for every input: a degenerate test model"
    for i, x in enumerate(ref["x"]):
        r = ex.explain_input(x)
        assert r.class_index == ref["class_index"][i]
        np.testing.assert_allclose(r.probabilities, ref["probabilities"][i], rtol=0, atol=1e-5)
        _assert_close_maps(r.cam_raw, ref["gradcam_cam_raw"][i])
        _assert_close_maps(r.cam_raw, ref["autograd_gradcam"][i])


def test_manifest_of_an_onnx_export(onnx_zoo: Path) -> None:
    """Input size from the graph (64, not --input-size's 224), the default target is the input tensor of the global
    pooling, the ONNX file is recorded by hash and left as it was."""
    m = Explainer.load(onnx_zoo / "bundles" / "resnet18").manifest
    assert m.input_shape == (64, 64, 3) and m.feature_shape == (2, 2, 512)
    assert m.target_layer == "/layer4/layer4.1/relu_1/Relu_output_0"
    assert m.head_layers == ("/avgpool/GlobalAveragePool", "/Flatten", "/fc/Gemm")
    assert m.output_activation == "none" and len(m.class_names) == 1000 and m.preprocess.channel_order == "RGB"
    model = onnx_zoo / "models" / "resnet18.onnx"
    assert m.source["model_sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
    assert m.source["model_sha256"] == str(_ref(onnx_zoo, "resnet18")["onnx_sha256"])  # as written, before export
    assert set((onnx_zoo / "models").iterdir()) == {onnx_zoo / "models" / f"{n}.onnx" for n in [*CASES, "elu_head"]}
    # The squeeze-and-excitation blocks' poolings inside the features do not start the head.
    mobilenet = Explainer.load(onnx_zoo / "bundles" / "mobilenet_v3_small").manifest
    assert mobilenet.target_layer == "/features/features.12/features.12.2/HardSwish_output_0"
    assert mobilenet.head_layers[-3:] == ("/classifier/classifier.0/Gemm", "/classifier/classifier.1/HardSwish",
                                          "/classifier/classifier.3/Gemm")
    fruit = Explainer.load(onnx_zoo / "bundles" / "fruit").manifest  # its Flatten head: ONNX's (c, h, w) order
    assert fruit.class_names == ("Apfel", "Orange", "Tomate") and fruit.feature_shape == (4, 4, 128)
    assert fruit.head_layers == ("/1/Flatten", "/2/Gemm", "/3/Relu", "/5/Gemm")


def test_list_layers_marks_the_default(onnx_zoo: Path) -> None:
    proc = run_python("-m", "tools.export", str(onnx_zoo / "models" / "resnet18.onnx"), "--list-layers")
    assert proc.returncode == 0, proc.stderr
    lines = {line.split()[0]: line for line in proc.stdout.splitlines()}
    assert "ok (default)" in lines["/layer4/layer4.1/relu_1/Relu_output_0"]
    assert "(2, 2, 512)" in lines["/layer4/layer4.1/relu_1/Relu_output_0"]
    assert lines["/layer4/layer4.1/Add_output_0"].split()[-1] == "ok"  # the ReLU joins the head
    assert "no: the head reads '/layer4/layer4.0/relu_1/Relu_output_0'" in lines["/layer4/layer4.1/conv1/Conv_output_0"]


def _last_error(args: list[str], tmp_path: Path) -> str:
    proc = run_python("-m", "tools.export", *args, "--out", str(tmp_path / "b"))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "b").exists()
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: "), proc.stderr
    return last


@pytest.mark.parametrize(("model", "extra", "message"), [
    ("elu_head", [], "op /5/Elu (Elu) after the target '/1/Relu_output_0' is not supported by the NumPy head"),
    ("resnet18", ["--target-layer", "/layer4/layer4.1/conv2/Conv"],
     "the head reads '/layer4/layer4.0/relu_1/Relu_output_0', which comes before the target "
     "'/layer4/layer4.1/conv2/Conv_output_0' (a skip connection around it?)"),
    ("resnet18", ["--target-layer", "layer4"], "target layer 'layer4': no such tensor or node in the ONNX graph"),
    ("resnet18", ["--target-layer", "/Flatten_output_0"], "gives shape (1, 512); it must be a 4-D feature map"),
    ("resnet18", ["--weights", "w.pth"], "an .onnx model holds its weights"),
])
def test_bad_heads_and_targets_are_one_line_errors(onnx_zoo: Path, tmp_path: Path, model: str, extra: list[str],
                                                   message: str) -> None:
    assert message in _last_error([str(onnx_zoo / "models" / f"{model}.onnx"), *extra], tmp_path)


def test_unreadable_onnx_files_are_one_line_errors(onnx_zoo: Path, tmp_path: Path) -> None:
    real = (onnx_zoo / "models" / "fruit.onnx").read_bytes()
    files = {"junk.onnx": b"not a protobuf at all \xff\xfe", "truncated.onnx": real[: len(real) // 3],
             "empty.onnx": b""}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    expected = {"junk.onnx": f"cannot read ONNX model {tmp_path / 'junk.onnx'}: ",
                "truncated.onnx": f"cannot read ONNX model {tmp_path / 'truncated.onnx'}: ",
                "empty.onnx": f"ONNX model {tmp_path / 'empty.onnx'} "}
    for name, message in expected.items():
        assert _last_error([str(tmp_path / name)], tmp_path).startswith(f"error: {message}")
    missing = _last_error([str(tmp_path / "missing.onnx")], tmp_path)
    assert missing == f"error: ONNX model {tmp_path / 'missing.onnx'} does not exist"


def test_verify_compares_with_onnxruntime_and_torch_autograd(onnx_zoo: Path, tmp_path: Path) -> None:
    proc = run_python("-m", "tools.verify", str(onnx_zoo / "bundles" / "fruit"), "--model",
                      str(onnx_zoo / "models" / "fruit.onnx"), "--images", str(REPO / "samples"), "--limit", "3",
                      "--json", "--sheet", str(tmp_path / "s.png"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert report["passed"] and set(report["scores"]) == {"logit", "probability"}
    for metrics in report["scores"].values():
        assert metrics["images"] == 3 and metrics["top1_agreement"] == 1.0
        assert metrics["max_abs_cam_raw_diff"] > 0 and metrics["max_rel_cam_raw_diff"] <= 1e-4


BLOCKED = """
import importlib.abc, sys

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("onnx", "onnx2torch", "onnxruntime"):
            raise ImportError(f"No module named {name!r} (blocked)")
        return None

sys.meta_path.insert(0, Block())
sys.path.insert(0, sys.argv.pop(1))
from tools.export.exporter import main
raise SystemExit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("extra", [["--out", "b"], ["--list-layers"]])
def test_onnx_model_without_onnx_is_a_one_line_error(tmp_path: Path, extra: list[str]) -> None:
    (tmp_path / "m.onnx").write_bytes(b"")
    proc = run_python("-c", BLOCKED, str(REPO), str(tmp_path / "m.onnx"), *extra, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: ONNX models need requirements-torch.txt installed")
