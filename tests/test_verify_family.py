"""tools.verify --method for the CAM family beyond the first seven methods: every method checked against its reference
on a small seeded bundle of each format (Keras: TensorFlow ops and tapes; PyTorch and ONNX: pytorch-grad-cam and
torch-cam), and a reference made wrong on purpose fails. The methods of one format run in one subprocess (one
TensorFlow or torch start-up), each through verifier.verify, the function `python -m tools.verify` calls; one image
each (image 0's seed: tools/verify/family.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import REPO, run_python, zoo_frames

from tools.verify import family

pytestmark = pytest.mark.slow
# One process, several methods: `python -c DRIVER BUNDLE MODEL WEIGHTS IMAGES LIMIT SPEC...`, SPEC = METHOD or
# METHOD:PLANT, PLANT a bug put into the reference side first; prints one JSON report per line.
DRIVER = """
import json, sys
from pathlib import Path
from tools.verify import family, family_tf, verifier

def plant(name):
    if name == "no_hvp":  # Shapley-CAM's TensorFlow reference without its second-order term: Grad-CAM
        family_tf.shapleycam = _gradcam
    elif name == "next_seed":  # the reference draws the noise of the next image's seed
        noise = family.noise
        family.noise = lambda method, seed, shape, samples: noise(method, seed + 1, shape, samples)

def _gradcam(ref, A, c, score):
    import tensorflow as tf
    with tf.GradientTape() as tape:
        tape.watch(A)
        logits, probabilities = ref.head(A[None])
        value = family_tf.score_of(logits, probabilities, c, score)
    return tf.reduce_sum(A * tf.reduce_mean(tape.gradient(value, A), axis=(0, 1)), axis=-1)

bundle, model, weights, images, limit = sys.argv[1:6]
for spec in sys.argv[6:]:
    method, _, bug = spec.partition(":")
    if bug:
        plant(bug)
    report = verifier.verify(Path(bundle), Path(model) if ":" not in model else model,
                             None if weights == "-" else Path(weights), Path(images), int(limit), None, method,
                             samples=2)
    print(json.dumps({"spec": spec, **{k: report[k] for k in ("passed", "head", "scores", "method_reference")}}))
"""


def _verify_family(bundle: Path, model: str, weights: str, images: Path, limit: int,
                   specs: list[str]) -> dict[str, dict]:
    proc = run_python("-c", DRIVER, str(bundle), model, weights, str(images), str(limit), *specs, timeout=1500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    reports = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return {r["spec"]: r for r in reports}


def _assert_checked(report: dict, scores: tuple[str, ...]) -> None:
    """Passed on both checks, for each score the reference defines, against maps that are not all zeros."""
    assert report["passed"], report
    assert tuple(report["head"]) == tuple(report["scores"]) == scores
    for m in report["scores"].values():
        assert m["top1_agreement"] == 1.0 and m["max_abs_cam_raw_diff"] > 0  # both maps zero: vacuous


def test_keras_family_equals_tensorflow(zoo: Path, tmp_path: Path) -> None:
    """Every family method on a small Keras bundle whose head is not linear (hard swish, SiLU: Shapley-CAM's
    Hessian term is not zero); Shapley-CAM's reference without that term fails."""
    images = zoo_frames(zoo, "gap_hardswish_silu", tmp_path / "images")
    reports = _verify_family(zoo / "bundles" / "gap_hardswish_silu", str(zoo / "models" / "gap_hardswish_silu.keras"),
                             "-", images, 1, [*family.FAMILY, "shapleycam:no_hvp"])
    for method in family.FAMILY:
        _assert_checked(reports[method], ("logit", "probability"))
        assert reports[method]["method_reference"] == family.reference_text(method, "TensorFlow")
    planted = reports["shapleycam:no_hvp"]
    assert not planted["passed"] and not planted["head"]["logit"]["passed"]


@pytest.fixture(scope="module")
def torch_zoo() -> Path:
    from torch_support import cached_zoo

    for package in ("torch", "litert_torch", "pytorch_grad_cam", "torchcam"):
        pytest.importorskip(package, reason="the PyTorch references need requirements-torch.txt")
    return cached_zoo("tools.verify.torch_zoo", "torchzoo", "torch_*.py")


def test_pytorch_family_equals_pytorch_grad_cam_and_torch_cam(torch_zoo: Path) -> None:
    """Every family method on a small PyTorch bundle (GELU, SiLU, hard sigmoid in its head); torch-cam's methods on
    the logit only; Smooth Grad-CAM++'s reference given another seed's noise fails."""
    reports = _verify_family(torch_zoo / "bundles" / "activation_head", "tools/verify/torch_models.py:activation_head",
                             str(torch_zoo / "models" / "activation_head.pth"), REPO / "samples", 1,
                             [*family.FAMILY, "smoothgradcampp:next_seed"])
    for method in family.FAMILY:
        scores = ("logit",) if method in family.LOGIT_ONLY_TORCH else ("logit", "probability")
        _assert_checked(reports[method], scores)
        assert reports[method]["method_reference"] == family.PYTORCH_REFERENCES[method]
    planted = reports["smoothgradcampp:next_seed"]
    assert not planted["passed"] and not planted["head"]["logit"]["passed"]


@pytest.fixture(scope="module")
def onnx_zoo() -> Path:
    from torch_support import cached_zoo

    for package in ("torch", "litert_torch", "onnx", "onnx2torch", "onnxruntime", "pytorch_grad_cam", "torchcam"):
        pytest.importorskip(package, reason="the ONNX references need requirements-torch.txt")
    return cached_zoo("tools.verify.onnx_zoo", "onnxzoo", "torch_*.py", "onnx_*.py")


def test_onnx_family_equals_the_references_on_onnx2torch(onnx_zoo: Path) -> None:
    """The PyTorch references on onnx2torch's graph of the file (pytorch-grad-cam's ablation layer replaces a module
    of that graph), onnxruntime's classes."""
    reports = _verify_family(onnx_zoo / "bundles" / "activation_head_opset17",
                             str(onnx_zoo / "models" / "activation_head_opset17.onnx"), "-", REPO / "samples", 1,
                             list(family.FAMILY))
    for method in family.FAMILY:
        scores = ("logit",) if method in family.LOGIT_ONLY_TORCH else ("logit", "probability")
        _assert_checked(reports[method], scores)


def test_the_cli_checks_a_family_method_and_names_its_reference(zoo: Path, tmp_path: Path) -> None:
    """`python -m tools.verify --method sscam --samples 2`: the text report says what the map was compared with."""
    images = zoo_frames(zoo, "gap_hardswish_silu", tmp_path / "images")
    proc = run_python("-m", "tools.verify", str(zoo / "bundles" / "gap_hardswish_silu"), "--model",
                      str(zoo / "models" / "gap_hardswish_silu.keras"), "--images", str(images), "--limit", "1",
                      "--method", "sscam", "--samples", "2", "--sheet", str(tmp_path / "s.png"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    assert lines[0].endswith("method sscam, 1 images")
    assert lines[1] == f"  sscam's reference: {family.TF_REFERENCES['sscam']}, 2 samples"
    assert "masked or noisy copies through the TFLite trunk" in lines[2]
    assert lines[-1].startswith("PASS")
    bad = run_python("-m", "tools.verify", str(zoo / "bundles" / "gap_hardswish_silu"), "--model",
                     str(zoo / "models" / "gap_hardswish_silu.keras"), "--images", str(images), "--method", "sscam",
                     "--samples", "0")
    assert bad.returncode == 2 and bad.stderr.strip() == "error: --samples must be at least 1, got 0"
