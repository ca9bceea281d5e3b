"""PyTorch front end: torchvision models and the fruit CNN exported through `python -m tools.export MODULE:CALLABLE`
give the device the same Grad-CAM, top class and probabilities as PyTorch itself and pytorch-grad-cam.

Models, bundles and PyTorch references come from `python -m tools.verify.torch_zoo` (a subprocess, cached under build/
by content); the edge side runs here with the real TFLite interpreter and never imports torch.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import REPO, run_python
from torch_support import assert_close_maps, assert_parity, cached_zoo
from torch_support import references as _ref

from edge import Explainer
from tools.verify import report_text

pytest.importorskip("torch", reason="the PyTorch front end's tests need requirements-torch.txt")
pytest.importorskip("litert_torch", reason="the PyTorch front end's tests need requirements-torch.txt")
pytest.importorskip("timm", reason="the PyTorch front end's tests need requirements-torch.txt")

GRADCAM_CASES = ["resnet18", "shufflenet", "densenet_style", "fruit", "mobilenet_v3_small", "activation_head",
                 "softmax_end", "timm_mobilenetv3"]
# (case, method): the other CAM methods, on a linear head (ResNet18) and a non-linear one (MobileNetV3-small)
OTHER_METHODS = [("resnet18", "cam"), ("resnet18", "gradcampp"), ("resnet18", "layercam"),
                 ("mobilenet_v3_small", "gradcampp"), ("mobilenet_v3_small", "layercam")]


@pytest.fixture(scope="session")
def torch_zoo() -> Path:
    return cached_zoo("tools.verify.torch_zoo", "torchzoo", "torch_*.py")


@pytest.mark.parametrize("case", GRADCAM_CASES)
def test_gradcam_equals_pytorch_grad_cam(torch_zoo: Path, case: str) -> None:
    ref = _ref(torch_zoo, case)
    ex = Explainer.load(torch_zoo / "bundles" / case)
    # the tiny ones may give one class for all
    assert_parity(ex, ref, distinct_classes=case in ("resnet18", "shufflenet", "mobilenet_v3_small"))


@pytest.mark.parametrize(("case", "method"), OTHER_METHODS)
def test_other_methods_equal_pytorch(torch_zoo: Path, case: str, method: str) -> None:
    ref = _ref(torch_zoo, case)
    ex = Explainer.load(torch_zoo / "bundles" / case)
    for i, x in enumerate(ref["x"]):
        r = ex.explain_input(x, method=method)
        assert_close_maps(r.cam_raw, ref[f"{method}_cam_raw"][i])


def test_manifest_of_a_torchvision_export(torch_zoo: Path) -> None:
    ex = Explainer.load(torch_zoo / "bundles" / "resnet18")
    m = ex.manifest
    assert m.target_layer == "layer4" and m.input_shape == (64, 64, 3) and m.feature_shape == (2, 2, 512)
    assert m.output_activation == "none" and len(m.class_names) == 1000 and m.class_names[0] == "class_0"
    assert m.preprocess.channel_order == "RGB"
    np.testing.assert_allclose(np.array(m.preprocess.scale) * 255 * np.array([0.229, 0.224, 0.225]), 1, rtol=1e-5)
    assert m.head_layers == ("avgpool", "flatten", "fc")
    fruit = Explainer.load(torch_zoo / "bundles" / "fruit").manifest
    assert fruit.class_names == ("Apfel", "Orange", "Tomate") and fruit.feature_shape == (4, 4, 128)
    densenet = Explainer.load(torch_zoo / "bundles" / "densenet_style").manifest
    assert densenet.target_layer == "features" and densenet.head_layers == ("relu", "adaptive_avg_pool2d", "flatten",
                                                                            "classifier")


def test_manifest_of_non_linear_heads(torch_zoo: Path) -> None:
    """MobileNetV3's head keeps its Hardswish; BatchNorm1d is folded into the Linear before it, Dropout is dropped, a
    Softmax at the end becomes the output activation (no softmax of the probabilities), --classes-file's synset lines
    give the first synonym."""
    mobilenet = Explainer.load(torch_zoo / "bundles" / "mobilenet_v3_small")
    assert mobilenet.manifest.target_layer == "features" and mobilenet.manifest.output_activation == "none"
    assert [type(op).__name__ for op in mobilenet.head.ops] == ["Reduce", "Dense", "Activation", "Dense"]
    assert mobilenet.head.ops[2].name == "hardswish"  # type: ignore[union-attr]
    head = Explainer.load(torch_zoo / "bundles" / "activation_head")
    kinds = [getattr(op, "name", type(op).__name__) for op in head.head.ops]
    assert kinds == ["Reduce", "Dense", "gelu", "Dense", "silu", "Dense", "hardsigmoid", "Dense"]
    assert head.manifest.output_activation == "none"
    assert head.manifest.class_names == ("tench", "goldfish", "great white shark", "tiger shark", "hammerhead")
    softmax = Explainer.load(torch_zoo / "bundles" / "softmax_end")
    assert softmax.manifest.output_activation == "softmax" and softmax.head.ops[-1].kind == "vector"


def test_manifest_of_a_timm_export(torch_zoo: Path) -> None:
    """timm's SelectAdaptivePool2d is traced through, so its pooling starts the head (default target `blocks`, not the
    1x1 map after conv_head), and conv_head, a 1x1 convolution of the pooled vector, is a Dense."""
    ex = Explainer.load(torch_zoo / "bundles" / "timm_mobilenetv3")
    assert ex.manifest.target_layer == "blocks" and ex.manifest.feature_shape == (2, 2, 288)
    assert ex.manifest.head_layers[:3] == ("global_pool.pool", "global_pool.flatten", "conv_head")
    assert [getattr(op, "name", type(op).__name__) for op in ex.head.ops] == ["Reduce", "Dense", "hardswish", "Dense"]


def test_list_layers_marks_the_default() -> None:
    proc = run_python("-m", "tools.export", "torchvision.models:resnet18", "--input-size", "64", "--list-layers",
                      "--all")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:3] == ["usable target layers (2; * = the default):",
                         "  * layer4                           Sequential               (2, 2, 512)",
                         "    avgpool                          AdaptiveAvgPool2d        (1, 1, 512)"]
    rows = {line.split()[0]: line for line in lines[4:]}
    assert "op layer4.0 (BasicBlock) after the target 'layer3'" in rows["layer3"]


HEADS = """
from torch import nn

class Net(nn.Module):
    def __init__(self, *head):
        super().__init__()
        self.features = nn.Conv2d(3, 8, 3, stride=4)
        self.classifier = nn.Sequential(*head)

    def forward(self, x):
        return self.classifier(self.features(x))

def mish_head():
    return Net(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Mish(), nn.Linear(8, 3))

def gelu_tanh_head():
    return Net(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.GELU(approximate="tanh"), nn.Linear(8, 3))

def conv_head():
    return Net(nn.Conv2d(8, 3, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten())
"""


@pytest.mark.parametrize(("model", "message"), [
    ("torchvision.models:no_such_model", "torchvision.models has no callable 'no_such_model'"),
    ("no_such_package.models:build", "cannot import module 'no_such_package.models'"),
    ("missing_file.py:build", "model file 'missing_file.py' does not exist"),
    ("torchvision.models:list_models", "returned list, not a torch.nn.Module"),
    ("torchvision.models", "MODEL 'torchvision.models': no such model file; a PyTorch model names its callable too, "
                           "e.g. torchvision.models:CALLABLE"),
    ("torchvision.models:", "MODEL 'torchvision.models:' is neither a model file nor package.module:callable"),
    ("torchvision..models:resnet18", "MODEL 'torchvision..models:resnet18' is neither a model file nor package"),
    ("torchvision.models:resnet18:x", "is neither a model file nor package.module:callable / file.py:callable"),
    ("head.py:mish_head", "op classifier.2 (Mish) after the target 'features' is not supported by the NumPy head "
                          "(supported: "),
    ("head.py:gelu_tanh_head", "op classifier.2 (GELU) after the target 'features' is not supported by the NumPy "
                               "head (only GELU's exact erf form, not approximate='tanh'); choose a later target"),
    ("head.py:conv_head", "op classifier.0 (Conv2d) after the target 'features' is not supported"),
])
def test_bad_models_are_one_line_errors(tmp_path: Path, model: str, message: str) -> None:
    (tmp_path / "head.py").write_text(HEADS, encoding="utf-8")
    proc = run_python("-m", "tools.export", model.replace("head.py", str(tmp_path / "head.py")), "--input-size", "64",
                      "--out", str(tmp_path / "b"), "--target-layer", "features")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and message in last, proc.stderr
    assert not (tmp_path / "b").exists()


def test_verify_compares_with_torch_autograd(torch_zoo: Path, tmp_path: Path) -> None:
    proc = run_python("-m", "tools.verify", str(torch_zoo / "bundles" / "resnet18"), "--model",
                      "torchvision.models:resnet18", "--weights", str(torch_zoo / "models" / "resnet18.pth"),
                      "--images", str(REPO / "samples"), "--limit", "2", "--json", "--sheet", str(tmp_path / "s.png"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert report["passed"] and set(report["scores"]) == {"logit", "probability"}
    assert report["reference"] == "PyTorch"
    text = "\n".join(report_text.lines(report))
    assert "TensorFlow" not in text and "tape.gradient" not in text
    assert "(a) head on PyTorch's own activations vs torch autograd" in text
    for metrics in report["scores"].values():
        assert metrics["images"] == 2 and metrics["top1_agreement"] == 1.0
        assert metrics["max_abs_cam_raw_diff"] > 0 and metrics["max_rel_cam_raw_diff"] <= 1e-4


def test_weights_that_do_not_fit_are_one_line_errors(tmp_path: Path) -> None:
    """A state_dict of another model, a pickled whole model (weights_only=True refuses to run its pickle) and a file
    that is not a state_dict at all, each named in one line."""
    other, whole = tmp_path / "other.pth", tmp_path / "whole.pth"
    proc = run_python("-c", f"import torch, torchvision; m = torchvision.models.resnet18(); "
                            f"torch.save(m.state_dict(), {str(other)!r}); torch.save(m, {str(whole)!r})")
    assert proc.returncode == 0, proc.stderr
    (tmp_path / "junk.pth").write_bytes(b"not a pickle")
    for weights, message in [(other, f"weights {other} do not fit the model: Missing key(s) in state_dict"),
                             (whole, f"cannot read weights {whole}: UnpicklingError"),
                             (tmp_path / "junk.pth", f"cannot read weights {tmp_path / 'junk.pth'}")]:
        proc = run_python("-m", "tools.export", "torchvision.models:shufflenet_v2_x0_5", "--weights", str(weights),
                          "--out", str(tmp_path / "b"))
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        last = proc.stderr.strip().splitlines()[-1]
        assert last.startswith(f"error: {message}"), proc.stderr


def test_verify_refuses_a_malformed_model_in_one_line(torch_zoo: Path) -> None:
    proc = run_python("-m", "tools.verify", str(torch_zoo / "bundles" / "resnet18"), "--model", "torchvision.models:",
                      "--images", str(REPO / "samples"), "--limit", "1")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: MODEL 'torchvision.models:' is neither a model file nor"), proc.stderr


def test_test_models_keep_their_residual_branches() -> None:
    """timm's zero_init_last zeroes the last BatchNorm of each residual branch: re-estimated for tests, the model must
    compute through its branches (else the converter folds them away and the test model is another network)."""
    import timm
    import torch
    from torch import nn

    from tools.verify import torch_models

    torch.manual_seed(0)  # the model and the input below: the same on every machine
    net = timm.create_model("resnet18", pretrained=False, num_classes=10)
    assert any(bool((m.weight == 0).all()) for m in net.modules() if isinstance(m, nn.BatchNorm2d))
    torch_models.reestimate_batchnorm(net, (32, 32))
    assert not any(bool((m.weight == 0).all()) for m in net.modules() if isinstance(m, nn.BatchNorm2d))
    block = net.layer1[0]
    x = torch.randn(1, 64, 8, 8)
    with torch.no_grad():
        branch = block.bn2(block.conv2(block.act1(block.bn1(block.conv1(x)))))
    assert float(branch.abs().max()) > 1e-3


def test_the_tutorials_resnet18_flow(torch_zoo: Path, tmp_path: Path) -> None:
    """docs/export.md's PyTorch flow: a ResNet18 state_dict saved with torch.save, exported with synset names,
    then `edge run --method cam --top-k 5` on images: every record names the 5 most probable classes, best first, and
    the overlay carries the top-5 panel (it differs from the --top-k 1 overlay, which has none)."""
    synsets = tmp_path / "synset_words.txt"
    synsets.write_text("".join(f"n{i:08d} thing {i}, other name {i}\n" for i in range(1000)), encoding="utf-8")
    bundle = tmp_path / "r18"
    proc = run_python("-m", "tools.export", "torchvision.models:resnet18", "--weights",
                      str(torch_zoo / "models" / "resnet18.pth"), "--input-size", "64", "--classes-file", str(synsets),
                      "--preprocess", "imagenet", "--out", str(bundle))
    assert proc.returncode == 0, proc.stderr
    # only the tool's own lines: not litert-torch's progress, its per-op lowering log, JAX's or torch's notices
    assert len(proc.stdout.splitlines()) == 1 and proc.stdout.startswith("wrote "), proc.stdout
    assert all(line.startswith(("INFO tools.", "WARNING tools.")) for line in proc.stderr.splitlines()), proc.stderr
    images = tmp_path / "photos"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):  # noise around a different colour each: not one class for both
        image = np.clip(rng.normal(40 + 150 * i, 40, (96, 128, 3)), 0, 255).astype(np.uint8)
        assert cv2.imwrite(str(images / f"photo_{i}.png"), image)
    overlays = {}
    for k in (5, 1):
        log = tmp_path / f"log{k}"
        proc = run_python("-m", "edge", "run", "--model", str(bundle), "--source", f"images:{images}", "--method",
                          "cam", "--top-k", str(k), "--no-display", "--log-dir", str(log), timeout=300)
        assert proc.returncode == 0, proc.stderr
        records = [json.loads(line) for line in (log / "predictions.jsonl").read_text().splitlines()]
        assert [r["file"] for r in records] == ["photo_0.png", "photo_1.png"]
        for r in records:
            assert r["method"] == "cam"
            best = sorted(r["probabilities"].items(), key=lambda item: -item[1])[:k]
            assert [name for name, _ in r["top"]] == [name for name, _ in best]
            assert r["label"] == r["top"][0][0] and r["label"].startswith("thing ")
        overlays[k] = [cv2.imread(str(log / r["overlay_jpeg"])).astype(int) for r in records]
    for with_panel, without in zip(overlays[5], overlays[1], strict=True):
        assert np.abs(with_panel - without).mean() > 1.0
