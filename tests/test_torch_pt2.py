"""`.pt2` programs (torch.export.save) as MODEL: exported without model code, they give the device the same Grad-CAM,
top class and probabilities as PyTorch and pytorch-grad-cam on the original module; --list-layers names module paths
from the ops' nn_module_stack; unsupported head ops and unreadable files are one-line errors.

Programs, bundles and references come from `python -m tools.verify.pt2_zoo` (a subprocess, cached under build/ by
content). The head-only tests below read programs in this process (no litert-torch conversion: seconds).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, perturbed_copy, run_python
from torch_support import assert_parity, cached_zoo
from torch_support import references as _ref

from edge import Explainer

torch = pytest.importorskip("torch", reason="the .pt2 front end's tests need requirements-torch.txt")
pytest.importorskip("litert_torch", reason="the .pt2 front end's tests need requirements-torch.txt")
pytest.importorskip("timm", reason="the .pt2 front end's tests need requirements-torch.txt")

CASES = ["fruit", "mobilenet_v3_small", "timm_mobilenetv3"]


@pytest.fixture(scope="session")
def pt2_zoo() -> Path:
    return cached_zoo("tools.verify.pt2_zoo", "pt2zoo", "torch_*.py", "pt2_zoo.py", "onnx_zoo.py")


@pytest.mark.parametrize("case", CASES)
def test_gradcam_equals_pytorch_grad_cam(pt2_zoo: Path, case: str) -> None:
    ref = _ref(pt2_zoo, case)
    ex = Explainer.load(pt2_zoo / "bundles" / case)
    # the fruit CNN has 3 classes: one for all 3 inputs is no sign of a broken model
    assert_parity(ex, ref, distinct_classes=case != "fruit")


def test_manifests_name_module_paths(pt2_zoo: Path) -> None:
    """Default targets are the modules feeding the head's pooling (not a squeeze-and-excitation pooling inside the
    features); timm's conv_head, a 1x1 convolution of the pooled vector, became a Dense; the program fixed the size."""
    mobilenet = Explainer.load(pt2_zoo / "bundles" / "mobilenet_v3_small").manifest
    assert mobilenet.target_layer == "features" and mobilenet.input_shape == (64, 64, 3)
    assert mobilenet.head_layers == ("avgpool", "flatten", "classifier.0", "classifier.1", "classifier.2",
                                     "classifier.3")
    timm_mv3 = Explainer.load(pt2_zoo / "bundles" / "timm_mobilenetv3")
    assert timm_mv3.manifest.target_layer == "blocks"
    assert timm_mv3.manifest.head_layers == ("global_pool.pool", "conv_head", "act2", "flatten", "classifier")
    assert [getattr(op, "name", type(op).__name__) for op in timm_mv3.head.ops] == ["Reduce", "Dense", "hardswish",
                                                                                     "Dense"]
    fruit = Explainer.load(pt2_zoo / "bundles" / "fruit").manifest
    assert fruit.target_layer == "0" and fruit.feature_shape == (4, 4, 128)
    assert fruit.class_names == ("Apfel", "Orange", "Tomate") and fruit.source["model"] == "fruit.pt2"


def test_list_layers_names_module_paths(pt2_zoo: Path) -> None:
    proc = run_python("-m", "tools.export", str(pt2_zoo / "models" / "mobilenet_v3_small.pt2"), "--list-layers",
                      "--all")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    usable = int(lines[0].split("(")[1].split(";")[0])
    rows = {line[4:].split()[0]: line for line in lines[1:] if line.startswith("  ")}
    assert rows["features"].startswith("  * ") and "(2, 2, 576)" in rows["features"]
    assert rows["avgpool"] in lines[1:usable + 1]
    assert "op features.12.0 (aten.conv2d.default) after the target 'features.11'" in rows["features.11"]
    # inside a squeeze-and-excitation block, the head would read the block's input too
    assert "the head reads" in rows["features.11.block.2.fc1"]


def _error_line(*args: str) -> str:
    proc = run_python("-m", "tools.export", *args)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ")
    return last


def test_unsupported_head_op_is_a_one_line_error(pt2_zoo: Path, tmp_path: Path) -> None:
    last = _error_line(str(pt2_zoo / "models" / "elu_head.pt2"), "--out", str(tmp_path / "b"))
    assert "op 5 (aten.elu.default) after the target '1' is not supported by the NumPy head" in last
    assert last.endswith("choose a later target (see --list-layers)")
    assert not (tmp_path / "b").exists()


def test_unreadable_pt2_files_are_one_line_errors(pt2_zoo: Path, tmp_path: Path) -> None:
    junk, truncated = tmp_path / "junk.pt2", tmp_path / "truncated.pt2"
    junk.write_bytes(b"not a zip archive")
    whole = (pt2_zoo / "models" / "elu_head.pt2").read_bytes()
    truncated.write_bytes(whole[: len(whole) // 2])
    for path in (junk, truncated):
        last = _error_line(str(path), "--out", str(tmp_path / "b"))
        assert last.startswith(f"error: cannot read {path} as a torch.export program"), last
    last = _error_line(str(tmp_path / "missing.pt2"), "--list-layers")
    assert last == f"error: .pt2 model {tmp_path / 'missing.pt2'} does not exist"
    last = _error_line(str(pt2_zoo / "models" / "elu_head.pt2"), "--weights", str(junk), "--out", str(tmp_path / "b"))
    assert "a .pt2 program holds its weights" in last


class _Mlp(torch.nn.Module):  # type: ignore[misc,unused-ignore]
    """Conv trunk, then pool -> Flatten -> Linear -> BatchNorm1d -> ReLU -> Linear: in the core ATen opset this is
    mean.dim, view, permute + addmm, _native_batch_norm_legit_no_training + getitem, relu."""

    def __init__(self) -> None:
        super().__init__()
        nn = torch.nn
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.BatchNorm2d(8), nn.ReLU())
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 12), nn.BatchNorm1d(12),
                                  nn.ReLU(), nn.Linear(12, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _flatten_head() -> torch.nn.Module:
    from tools.verify import torch_models

    return torch_models.fruit_cnn()


def _activation_head() -> torch.nn.Module:
    from tools.verify import torch_models

    return torch_models.activation_head()


@pytest.mark.parametrize(("build", "size", "decompose"), [
    (_Mlp, 32, True), (_Mlp, 32, False), (_flatten_head, 100, True), (_activation_head, 32, False)])
def test_head_from_aten_ops_equals_the_module(build: object, size: int, decompose: bool, tmp_path: Path) -> None:
    """The head read from both ATen spellings (torch.export's default and run_decompositions()'s core opset) gives
    the module's logits on the module's own feature map, the Flatten's NCHW rows permuted to NHWC."""
    from tools.export.torch import pt2_front_end
    from tools.verify import pt2_zoo, torch_models

    torch.manual_seed(0)
    net = torch_models.reestimate_batchnorm(build(), (size, size))  # type: ignore[operator]
    path = tmp_path / "m.pt2"
    pt2_zoo.write_pt2(net, size, path, decompose=decompose)
    gm, got_size = pt2_front_end.program(path, (224, 224))
    split, head, _, _ = pt2_front_end.split_and_head(gm, None)
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        expected = net(x).numpy()
        feature_maps = pt2_front_end.feature_module(split)(x[:1]), pt2_front_end.feature_module(split)(x[1:])
    assert got_size == (size, size)
    for A, logits in zip(feature_maps, expected, strict=True):
        actual = head.forward(A[0].numpy().transpose(1, 2, 0)).logits  # NCHW -> (h, w, k)
        np.testing.assert_allclose(actual, logits, rtol=0, atol=1e-5 * np.abs(logits).max())


class _NormHead(torch.nn.Module):  # type: ignore[misc,unused-ignore]
    """ConvNeXt's head in miniature: pool, permute to NHWC, LayerNorm, flatten, Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.features = torch.nn.Conv2d(3, 4, 3)
        self.norm = torch.nn.LayerNorm(4)
        self.fc = torch.nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.nn.functional.adaptive_avg_pool2d(self.features(x), 1)
        return self.fc(torch.flatten(self.norm(pooled.permute(0, 2, 3, 1)), 1))


def _hardswish_mlp() -> torch.nn.Module:
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 4), nn.Hardswish(),
                         nn.Linear(4, 2))


@pytest.mark.parametrize(("build", "decompose", "message"), [
    # a decomposed activation (hardswish as add/clamp/mul/div) is refused by its first op
    (_hardswish_mlp, True, r"op 4 \(aten\.add\.Tensor\) after the target '0' is not supported"),
    # the pooled vector permuted to (1, 1, 1, c) is no feature map: the default target is still before the pooling
    (_NormHead, False, r"op permute \(aten\.permute\.default\) after the target 'features' is not supported")])
def test_unsupported_heads_are_refused_by_their_first_op(build: object, decompose: bool, message: str,
                                                         tmp_path: Path) -> None:
    from tools.export.torch import pt2_front_end
    from tools.export.torch.model_spec import TorchExportError
    from tools.verify import pt2_zoo

    path = tmp_path / "m.pt2"
    pt2_zoo.write_pt2(build(), 16, path, decompose=decompose)  # type: ignore[operator]
    gm, _ = pt2_front_end.program(path, (224, 224))
    with pytest.raises(TorchExportError, match=message):
        pt2_front_end.split_and_head(gm, None)


def _verify_program(bundle: Path, program: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_python("-m", "tools.verify", str(bundle), "--model", str(program), "--images", str(REPO / "samples"),
                      "--limit", "2", "--json", *extra)


def test_verify_compares_a_program_with_torch_autograd(pt2_zoo: Path, tmp_path: Path) -> None:
    """tools.verify takes the .pt2 as its reference (autograd on the program itself, the target found as the export
    found it); a head 1% off in its classifier fails the head check, exit 1."""
    program = pt2_zoo / "models" / "mobilenet_v3_small.pt2"
    proc = _verify_program(pt2_zoo / "bundles" / "mobilenet_v3_small", program, "--sheet", str(tmp_path / "s.png"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert report["passed"] and report["reference"] == "PyTorch"
    assert report["tolerances"]["accumulating_layers"] > 20 and report["tolerances"]["head_fan_in_sum"] == 576 + 1024
    for metrics in report["scores"].values():
        assert metrics["images"] == 2 and metrics["top1_agreement"] == 1.0
        assert 0 < metrics["max_rel_cam_raw_diff"] <= 1e-4

    bundle = perturbed_copy(pt2_zoo / "bundles" / "mobilenet_v3_small", tmp_path / "perturbed")
    proc = _verify_program(bundle, program, "--sheet", str(tmp_path / "p.png"))
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert not json.loads(proc.stdout[proc.stdout.index("{"):])["head_passed"]


def test_verify_refuses_weights_for_a_program(pt2_zoo: Path) -> None:
    proc = _verify_program(pt2_zoo / "bundles" / "fruit", pt2_zoo / "models" / "fruit.pt2", "--weights", "w.pth")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "error: a .pt2 program holds its weights: drop --weights"
