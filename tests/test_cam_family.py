"""The CAM family beyond the first seven methods, each equal to pytorch-grad-cam 1.5.7's own class on the PyTorch
model that the PyTorch front end exported (ResNet18, MobileNetV3-small, the fruit CNN), on the raw map before its ReLU
and resize: the device's trunk is the exported TFLite model, its head the NumPy head, the reference the library's
forward with only the last scaling step left out (tools/verify/cam_family.py, where its corrections are listed).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from torch_support import cached_zoo
from torch_support import references as _ref

from edge import Explainer
from edge.explain.cam import METHODS, TRUNK_PASS_METHODS

pytest.importorskip("pytorch_grad_cam", reason="the CAM family's references need requirements-torch.txt")
pytest.importorskip("litert_torch", reason="the PyTorch front end's tests need requirements-torch.txt")

from tools.export.torch import model_spec
from tools.verify import cam_family, torch_zoo

CASES = ("resnet18", "mobilenet_v3_small", "fruit")
HEAD_ONLY = ("gradcamelementwise", "eigengradcam", "kpcacam", "fem", "finercam", "shapleycam", "ablationcam",
             "randomcam")
# FEM's 2-sigma threshold is never crossed on a 2x2 map (a z-score of 4 values is at most sqrt(3)): its map is all
# zeros there, reference and device alike, so it is compared where the map is larger.
CASE_METHODS = [(case, method) for case in CASES for method in HEAD_ONLY if method != "fem" or case == "fruit"]
# The methods whose score the configured score changes (the others: no gradient, or a score of their own)
SCORED = [(case, method) for case in CASES for method in ("shapleycam", "ablationcam")]


@pytest.fixture(scope="session")
def torch_zoo_dir() -> Path:
    return cached_zoo("tools.verify.torch_zoo", "torchzoo", "torch_*.py")


@cache
def _network(zoo: Path, case: str) -> Any:
    spec = torch_zoo.CASES[case]
    net = model_spec.load(spec.logits_model or spec.model, zoo / "models" / f"{case}.pth")
    return net, net.get_submodule(spec.target)


def assert_close_terms(actual: NDArray[Any], expected: NDArray[Any], scale: float) -> None:
    """Within 1e-4 of `scale`: the reference's largest value or, for a sum whose terms cancel, its largest term."""
    assert scale > 0, "a degenerate reference would make this test vacuous"
    assert np.abs(actual - expected).max() <= 1e-4 * scale, np.abs(actual - expected).max() / scale


def _compare(zoo: Path, case: str, method: str, score: str) -> None:
    # Ablation-CAM's reference reruns the network once per channel: one input where k = 512
    inputs = 1 if (case, method) == ("resnet18", "ablationcam") else 3
    net, layer = _network(zoo, case)
    ref = _ref(zoo, case)
    ex = Explainer.load(zoo / "bundles" / case, score=score)
    for i, x in enumerate(ref["x"][:inputs]):
        c = int(ref["class_index"][i])
        if method == "randomcam":
            np.random.seed(i)  # the reference draws from NumPy's global generator; the device from its own
            METHODS["randomcam"].random.seed(i)  # type: ignore[attr-defined]
        expected = cam_family.grad_cam_family_raw(net, layer, x, c, method, score)
        r = ex.explain_input(x, method=method, target=c)
        assert r.method == method and r.cam.shape == r.cam_raw.shape == expected.shape
        actual = r.cam_raw
        if method in cam_family.SIGNLESS and float((actual * expected).sum()) < 0:
            expected = -expected  # the reference's sign is its SVD's; the device fixes it (docs/cam-methods.md)
        scale = float(np.abs(expected).max())
        if method == "randomcam":  # random weights of both signs: the terms cancel, their rounding does not
            weights = np.random.RandomState(i).uniform(-1, 1, size=(1, ex.head.input_shape[-1]))[0]
            scale = float(np.abs(ex.features(x) * weights).sum(axis=-1).max())
        assert_close_terms(actual, expected, scale)


@pytest.mark.parametrize(("case", "method"), CASE_METHODS)
def test_head_only_method_equals_pytorch_grad_cam(torch_zoo_dir: Path, case: str, method: str) -> None:
    _compare(torch_zoo_dir, case, method, "logit")


@pytest.mark.parametrize(("case", "method"), SCORED)
def test_probability_score_equals_pytorch_grad_cam(torch_zoo_dir: Path, case: str, method: str) -> None:
    """The softmax score: ShapleyCAM's Hessian then has the softmax's second derivative in it on every head."""
    _compare(torch_zoo_dir, case, method, "probability")


# Samples of the k-pass-per-sample methods in these tests, both sides (defaults 35 and 10: 35 k passes on each side
# would make SS-CAM on ResNet18 alone cost minutes); the algorithm per sample is the same.
SAMPLES = {"sscam": 3, "iscam": 3}
# (method): where its noise goes, its std, its samples: the noise torch-cam's distribution would draw, NCHW
NOISE = {"sscam": ("masks", 2.0, SAMPLES["sscam"]), "smoothgradcampp": ("input", 0.3, 4)}


def _same_noise(method: str, x: NDArray[np.float32], k: int, seed: int,
                monkeypatch: pytest.MonkeyPatch) -> list[NDArray[np.float32]] | None:
    """The NCHW noise arrays for torch-cam, and the device's method made to draw the same ones (as NHWC) for this
    test only: a later test's method must draw its own noise, not find this test's spent iterator."""
    if method not in NOISE:
        return None
    where, std, samples = NOISE[method]
    h, w, c = x.shape
    shape = (1, k if where == "masks" else c, h, w)
    rng = np.random.default_rng(seed)
    noise = [(rng.standard_normal(shape) * std).astype(np.float32) for _ in range(samples)]
    drawn = iter([n[0].transpose(1, 2, 0) for n in noise])
    monkeypatch.setattr(METHODS[method], "noise", lambda _shape: next(drawn))
    return noise


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("method", TRUNK_PASS_METHODS)  # the registry's: a new one needs its reference here
def test_trunk_pass_method_equals_its_reference(torch_zoo_dir: Path, case: str, method: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Score-CAM against pytorch-grad-cam, SS-CAM, IS-CAM and Smooth Grad-CAM++ against torch-cam, given the same
    noise: every perturbed input through the TFLite trunk and the NumPy head (one input per case: k passes each)."""
    net, layer = _network(torch_zoo_dir, case)
    ref = _ref(torch_zoo_dir, case)
    ex = Explainer.load(torch_zoo_dir / "bundles" / case)
    x, c = ref["x"][0], int(ref["class_index"][0])
    noise = _same_noise(method, x, ex.head.input_shape[-1], 0, monkeypatch)
    if method in SAMPLES:
        monkeypatch.setattr(METHODS[method], "samples", SAMPLES[method])
    if method == "scorecam":
        expected = cam_family.grad_cam_family_raw(net, layer, x, c, method)
    else:
        expected = cam_family.torchcam_raw(net, layer, x, c, method, noise, SAMPLES.get(method))
    r = ex.explain_input(x, method=method, target=c)
    assert r.method == method
    assert_close_terms(r.cam_raw, expected, float(np.abs(expected).max()))
