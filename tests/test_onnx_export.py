"""ONNX front end: torchvision models and the fruit CNN written by `torch.onnx.export(..., dynamo=False)` and exported
through `python -m tools.export MODEL.onnx` give the device the same Grad-CAM, top class and probabilities as the
original PyTorch model (torch autograd and pytorch-grad-cam); bad files and heads are one-line errors.

Models, bundles and references come from `python -m tools.verify.onnx_zoo` (a subprocess, cached under build/ by
content); the edge side runs here with the real TFLite interpreter and never imports torch or onnx.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import REPO, run_python
from torch_support import assert_parity, cached_zoo, export_without
from torch_support import references as _ref

from edge import Explainer
from edge.explain.head_ops import Activation

CASES = ["resnet18", "shufflenet", "mobilenet_v3_small", "fruit", "activation_head_opset17", "activation_head_opset20"]
ERROR_MODELS = ["elu_head", "gelu_tanh_opset17", "gelu_tanh_opset20"]


@pytest.fixture(scope="session")
def onnx_zoo() -> Path:
    for package in ("torch", "litert_torch", "onnx", "onnx2torch", "onnxruntime"):
        pytest.importorskip(package, reason="the ONNX front end's tests need requirements-torch.txt")
    return cached_zoo("tools.verify.onnx_zoo", "onnxzoo", "torch_*.py", "onnx_*.py")


@pytest.mark.parametrize("case", CASES)
def test_gradcam_equals_pytorch_grad_cam_on_the_original_model(onnx_zoo: Path, case: str) -> None:
    ref = _ref(onnx_zoo, case)
    ex = Explainer.load(onnx_zoo / "bundles" / case)
    # the tiny random-init models could give one class for all: their maps would still differ
    assert_parity(ex, ref, distinct_classes=case in CASES[:3])


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
    assert set((onnx_zoo / "models").iterdir()) == {onnx_zoo / "models" / f"{n}.onnx" for n in [*CASES, *ERROR_MODELS]}
    # The squeeze-and-excitation blocks' poolings inside the features do not start the head.
    mobilenet = Explainer.load(onnx_zoo / "bundles" / "mobilenet_v3_small").manifest
    assert mobilenet.target_layer == "/features/features.12/features.12.2/HardSwish_output_0"
    assert mobilenet.head_layers[-3:] == ("/classifier/classifier.0/Gemm", "/classifier/classifier.1/HardSwish",
                                          "/classifier/classifier.3/Gemm")
    fruit = Explainer.load(onnx_zoo / "bundles" / "fruit").manifest  # its Flatten head: ONNX's (c, h, w) order
    assert fruit.class_names == ("Apfel", "Orange", "Tomate") and fruit.feature_shape == (4, 4, 128)
    assert fruit.head_layers == ("/1/Flatten", "/2/Gemm", "/3/Relu", "/5/Gemm")


@pytest.mark.parametrize(("case", "opset", "gelu_node"), [
    ("activation_head_opset17", "17", "/classifier/classifier.3/Div"),
    ("activation_head_opset20", "20", "/classifier/classifier.3/Gelu")])
def test_manifest_of_gelu_and_silu_heads(onnx_zoo: Path, case: str, opset: str, gelu_node: str) -> None:
    """GELU as the Erf formula (opset 17) or a Gelu node (opset 20) and SiLU as x*Sigmoid(x) become the device's gelu
    and silu; the BatchNorm is folded and the Dropout dropped as in the PyTorch front end."""
    ex = Explainer.load(onnx_zoo / "bundles" / case)
    assert [getattr(op, "name", type(op).__name__) for op in ex.head.ops] == [
        "Reduce", "Dense", "gelu", "Dense", "silu", "Dense", "hardsigmoid", "Dense"]
    assert ex.manifest.source["onnx_opset"] == opset and ex.manifest.output_activation == "none"
    assert ex.manifest.head_layers[3:6] == ("/classifier/classifier.2/BatchNormalization", gelu_node,
                                            "/classifier/classifier.4/Gemm")
    assert ex.manifest.head_layers[6] == "/classifier/classifier.5/Sigmoid"  # the SiLU's first node


def test_list_layers_marks_the_default(onnx_zoo: Path) -> None:
    proc = run_python("-m", "tools.export", str(onnx_zoo / "models" / "resnet18.onnx"), "--list-layers", "--all")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    usable = int(lines[0].split("(")[1].split(";")[0])
    rows = {line[4:].split()[0]: line for line in lines[1:] if line.startswith("  ")}
    marked = [name for name, line in rows.items() if line.startswith("  * ")]
    assert marked == ["/layer4/layer4.1/relu_1/Relu_output_0"]
    assert "(2, 2, 512)" in rows["/layer4/layer4.1/relu_1/Relu_output_0"]
    assert rows["/layer4/layer4.1/Add_output_0"] in lines[1:usable + 1]  # the ReLU joins the head
    assert "the head reads '/layer4/layer4.0/relu_1/Relu_output_0'" in rows["/layer4/layer4.1/conv1/Conv_output_0"]


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
    ("gelu_tanh_opset17", [], "op /4/Mul .. /4/Mul_5 (Mul/Mul/Mul/Add/Mul/Tanh/Add/Mul/Mul) after the target "
                              "'/0/Conv_output_0' is not supported by the NumPy head (GELU's tanh approximation"),
    ("gelu_tanh_opset20", [], "op /4/Gelu (Gelu) after the target '/0/Conv_output_0' is not supported by the NumPy "
                              "head (only GELU's exact erf form, not approximate='tanh')"),
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


@pytest.mark.parametrize("extra", [["--out", "b"], ["--list-layers"]])
def test_onnx_model_without_onnx_is_a_one_line_error(tmp_path: Path, extra: list[str]) -> None:
    (tmp_path / "m.onnx").write_bytes(b"")
    proc = export_without(("onnx", "onnx2torch", "onnxruntime"), [str(tmp_path / "m.onnx"), *extra], tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: ONNX models need requirements-torch.txt installed")


# How exporters spell the device's activations: torch below opset 20 (Erf formula), onnxscript/dynamo (0.5 applied
# before x), 0.5*x first with Mul by 1/sqrt 2, the opset-20 Gelu node, SiLU with its operands swapped, Hardswish as
# x*HardSigmoid(x) (torch at opset 13, before HardSwish existed).
SPELLINGS = {"torch_erf": "gelu", "onnxscript_erf": "gelu", "half_x_first": "gelu", "gelu_node": "gelu",
             "silu_operands_swapped": "silu", "hardswish_opset13": "hardswish"}


def _spelled(form: str) -> object:
    """image (1, 3, 4, 4) -> Relu (the target, r) -> GlobalAveragePool -> Flatten -> Gemm 3x4 -> FORM -> Gemm 4x2."""
    from onnx import TensorProto, helper, numpy_helper

    def n(op: str, ins: list[str], out: str, **attributes: object) -> object:
        return helper.make_node(op, ins, [out], name=f"/{out}", **attributes)

    rng = np.random.default_rng(0)
    constants = {"w1": rng.normal(size=(3, 4)), "w2": rng.normal(size=(4, 2)), "one": 1.0, "half": 0.5, "two": 2.0,
                 "sqrt2": np.sqrt(2.0), "inv_sqrt2": 1 / np.sqrt(2.0)}
    erf = [n("Div", ["h", "sqrt2"], "d"), n("Erf", ["d"], "e"), n("Add", ["e", "one"], "p")]
    forms = {
        "torch_erf": [*erf, n("Mul", ["h", "p"], "m"), n("Mul", ["m", "half"], "a")],
        "onnxscript_erf": [*erf, n("Mul", ["half", "p"], "m"), n("Mul", ["h", "m"], "a")],
        "half_x_first": [n("Mul", ["h", "half"], "m"), n("Mul", ["inv_sqrt2", "h"], "d"), n("Erf", ["d"], "e"),
                         n("Add", ["one", "e"], "p"), n("Mul", ["m", "p"], "a")],
        "gelu_node": [n("Gelu", ["h"], "a")],
        "silu_operands_swapped": [n("Sigmoid", ["h"], "s"), n("Mul", ["s", "h"], "a")],
        "hardswish_opset13": [n("HardSigmoid", ["h"], "s", alpha=1 / 6), n("Mul", ["h", "s"], "a")],
        "x_times_sigmoid_2x": [n("Mul", ["h", "two"], "t"), n("Sigmoid", ["t"], "s"), n("Mul", ["h", "s"], "a")],
        "gelu_tanh_node": [n("Gelu", ["h"], "a", approximate="tanh")],
    }
    nodes = [n("Relu", ["image"], "r"), n("GlobalAveragePool", ["r"], "g"), n("Flatten", ["g"], "f"),
             n("Gemm", ["f", "w1"], "h"), *forms[form], n("Gemm", ["a", "w2"], "logits")]
    graph = helper.make_graph(nodes, form, [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 4, 4])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 2])],
                              [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in constants.items()])
    opset = 20 if form.startswith("gelu_") else 13 if form == "hardswish_opset13" else 17
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=9)


def _head_of(form: str) -> object:
    onnx = pytest.importorskip("onnx")
    from tools.export.head_passes import finish_head
    from tools.export.onnx import graph, head_ops

    model = _spelled(form)
    onnx.checker.check_model(model, full_check=True)
    g = graph.read(model, (4, 4))
    ops, _ = head_ops.convert(g, graph.head_nodes(g, "r"), (4, 4, 3), "r")
    return finish_head(ops, (4, 4, 3))


@pytest.mark.parametrize(("form", "activation"), SPELLINGS.items())
def test_activation_spellings_read_as_the_device_activation(form: str, activation: str) -> None:
    """The head reads each spelling as the one device activation, and its logits equal onnxruntime's on the graph."""
    onnxruntime = pytest.importorskip("onnxruntime")
    head: Any = _head_of(form)
    assert [op.name for op in head.ops if isinstance(op, Activation)] == [activation]
    session = onnxruntime.InferenceSession(_spelled(form).SerializeToString(),  # type: ignore[attr-defined]
                                           providers=["CPUExecutionProvider"])
    x = (np.random.default_rng(1).normal(size=(8, 1, 3, 4, 4)) * 3).astype(np.float32)
    for xi in x:  # Gemm inputs from about -6 to 6: both tails and the hard kinks at +-3
        expected = session.run(None, {"image": xi})[0][0]
        logits = head.forward(np.maximum(xi[0].transpose(1, 2, 0), 0)).logits
        np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("form", "message"), [
    ("gelu_tanh_node", "op /a (Gelu) after the target 'r' is not supported by the NumPy head (only GELU's exact erf "
                       "form, not approximate='tanh'); choose a later target"),
    ("x_times_sigmoid_2x", "op /t (Mul) after the target 'r' is not supported by the NumPy head (supported: "),
])
def test_near_spellings_are_refused_by_name(form: str, message: str) -> None:
    from tools.export.onnx.head_ops import OnnxHeadOpError

    with pytest.raises(OnnxHeadOpError) as e:
        _head_of(form)
    assert message in str(e.value)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_nodes_are_decomposed_for_onnx2torch(approximate: str) -> None:
    """The copy onnx2torch converts (opset 17, no Gelu) computes what onnxruntime's Gelu-20 does, trunk Gelus too."""
    onnxruntime = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, checker, helper

    from tools.export.onnx import opset

    graph = helper.make_graph([helper.make_node("Gelu", ["x"], ["y"], name="g", approximate=approximate)], "gelu",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [321])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [321])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)], ir_version=9)
    converted = opset.for_torch(model)
    checker.check_model(converted, full_check=True)
    assert "Gelu" not in {n.op_type for n in converted.graph.node} and converted.opset_import[0].version == 17
    x = np.linspace(-8, 8, 321, dtype=np.float32)
    y = [onnxruntime.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
         for m in (model, converted)]
    np.testing.assert_allclose(y[1], y[0], rtol=1e-6, atol=1e-6)
