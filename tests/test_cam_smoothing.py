"""pytorch-grad-cam's eigen_smooth and aug_smooth on the device, each equal to pytorch-grad-cam 1.5.7 with the same
option on the PyTorch model that the PyTorch front end exported (ResNet18, MobileNetV3-small, the fruit CNN).

eigen_smooth is compared on the raw map before ReLU; aug_smooth on its output, the mean of six ReLU'd and min-max
scaled maps, with the reference's scaling run at the feature map's size (the device's resolution) instead of the
input's. The reference's eigen_smooth sign is its SVD's; it is given the device's sign (tools/verify/cam_family.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_cam_family import _network, assert_close_terms
from test_cam_family import torch_zoo_dir as torch_zoo_dir  # the fixture, shared
from torch_support import references as _ref

from edge import Explainer
from edge.explain.cam import METHODS, CamContext
from edge.explain.cam.smoothing import AUGMENTATIONS, EIGEN_SMOOTH_IGNORED, augment, raw_map

pytest.importorskip("pytorch_grad_cam", reason="the CAM family's references need requirements-torch.txt")

from tools.verify import cam_family

CASES = ("resnet18", "mobilenet_v3_small", "fruit")
# Every method pytorch-grad-cam applies eigen_smooth to and the device computes as it does (Grad-CAM++: the device
# normalises the alphas as the paper's authors do, pytorch-grad-cam does not; docs/cam-methods.md)
EIGEN = ("gradcam", "xgradcam", "layercam", "hirescam", "gradcamelementwise", "shapleycam", "finercam", "randomcam")
EIGEN_CASES = [(case, method) for case in CASES for method in EIGEN] + [("fruit", "ablationcam"), ("fruit", "scorecam")]
# XGrad-CAM divides by each channel's sum of A (0.02 on a fruit input): the two trunks' float32 difference (TFLite
# against torch) reaches 1.3e-4 of its plain map's maximum there, and the projection takes it to 4.7e-4; on the same
# weighted activations the projection equals the reference's to 1e-6 (test_projection_equals_the_reference_svd)
TOLERANCE = {"xgradcam": 1e-3}
AUG = ("gradcam", "hirescam", "gradcamelementwise")
# + a trunk-pass method (its k passes on each augmented copy), a method that draws new weights per copy, LayerCAM
AUG_CASES = [(case, method, eigen) for case in CASES for method in AUG for eigen in (False, True)] + [
    ("fruit", "scorecam", False), ("fruit", "randomcam", False), ("fruit", "layercam", True)]


def _seed(method: str, seed: int) -> None:
    if method == "randomcam":  # the reference draws from NumPy's global generator; the device from its own
        np.random.seed(seed)
        METHODS["randomcam"].random.seed(seed)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("case", "method"), EIGEN_CASES)
def test_eigen_smooth_equals_pytorch_grad_cam(torch_zoo_dir: Path, case: str, method: str) -> None:
    net, layer = _network(torch_zoo_dir, case)
    ref = _ref(torch_zoo_dir, case)
    ex = Explainer.load(torch_zoo_dir / "bundles" / case)
    for i, x in enumerate(ref["x"][:1 if method in ("ablationcam", "scorecam") else 2]):
        c = int(ref["class_index"][i])
        _seed(method, i)
        with cam_family.signed_projection():
            expected = cam_family.grad_cam_family_raw(net, layer, x, c, method, eigen_smooth=True)
        _seed(method, i)
        r = ex.explain_input(x, method=method, target=c, eigen_smooth=True)
        assert r.method == method and r.cam_raw.shape == expected.shape
        scale = float(np.abs(expected).max())
        assert np.abs(r.cam_raw - expected).max() <= TOLERANCE.get(method, 1e-4) * scale
        _seed(method, i)
        plain = ex.explain_input(x, method=method, target=c).cam_raw
        assert float((r.cam_raw * plain).sum()) > 0  # the sign: where the method's own map puts the evidence
        assert not np.allclose(r.cam_raw, plain, atol=1e-3 * float(np.abs(plain).max()))  # a projection, not the sum


@pytest.mark.parametrize("case", CASES)
def test_projection_equals_the_reference_svd(torch_zoo_dir: Path, case: str) -> None:
    """On the same weighted activations (the device's XGrad-CAM terms), the device's first principal component equals
    pytorch-grad-cam's get_2d_projection given the device's sign."""
    from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection

    ex = Explainer.load(torch_zoo_dir / "bundles" / case)
    for i, x in enumerate(_ref(torch_zoo_dir, case)["x"][:3]):
        A = ex.features(x)
        hp = ex.head.forward(A)
        c = int(hp.probabilities.argmax())
        ctx = CamContext(A, ex.head, hp, ex.head.score_gradient(hp, c, "logit"), c)
        weighted = METHODS["xgradcam"].weighted(ctx)  # type: ignore[attr-defined]
        actual = raw_map(METHODS["xgradcam"], ctx, eigen_smooth=True)
        expected = get_2d_projection(weighted.transpose(2, 0, 1)[None])[0]
        expected *= np.sign(float((expected * actual).sum()))
        assert np.abs(actual - expected).max() <= 1e-6 * float(np.abs(expected).max()), i


@pytest.mark.parametrize("method", ["eigencam", "eigengradcam", "kpcacam", "fem"])
def test_eigen_smooth_is_ignored_where_pytorch_grad_cam_ignores_it(torch_zoo_dir: Path, method: str) -> None:
    """Their get_cam_image takes eigen_smooth and does not use it (their maps are projections already, or FEM's own)."""
    assert method in EIGEN_SMOOTH_IGNORED
    ex = Explainer.load(torch_zoo_dir / "bundles" / "fruit")
    x = _ref(torch_zoo_dir, "fruit")["x"][0]
    plain = ex.explain_input(x, method=method).cam_raw
    np.testing.assert_array_equal(ex.explain_input(x, method=method, eigen_smooth=True).cam_raw, plain)


@pytest.mark.parametrize(("case", "method", "eigen"), AUG_CASES)
def test_aug_smooth_equals_pytorch_grad_cam(torch_zoo_dir: Path, case: str, method: str, eigen: bool) -> None:
    """Six augmented copies through the TFLite trunk and the NumPy head, against the reference's six through torch."""
    net, layer = _network(torch_zoo_dir, case)
    ref = _ref(torch_zoo_dir, case)
    ex = Explainer.load(torch_zoo_dir / "bundles" / case)
    h, w, _ = ex.manifest.feature_shape
    x, c = ref["x"][0], int(ref["class_index"][0])
    _seed(method, 0)
    with cam_family.signed_projection():
        expected = cam_family.aug_smooth_map(net, layer, x, c, method, (w, h), eigen_smooth=eigen)
    _seed(method, 0)
    r = ex.explain_input(x, method=method, target=c, aug_smooth=True, eigen_smooth=eigen)
    assert r.method == method and r.cam_raw.shape == expected.shape == (h, w)
    assert_close_terms(r.cam_raw, expected, float(np.abs(expected).max()))
    assert r.cam.max() == pytest.approx(1.0) and np.array_equal(r.cam, r.cam_raw / r.cam_raw.max())
    if case == "fruit" and method == "gradcam" and not eigen:  # the copies differ: a real mean, not one map six times
        plain = ex.explain_input(x, method=method, target=c).cam
        assert np.abs(r.cam - plain).max() > 1e-2


@pytest.mark.parametrize("method", ["finercam", "smoothgradcampp"])
def test_aug_smooth_of_methods_without_the_option_in_their_reference(torch_zoo_dir: Path, method: str,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """pytorch-grad-cam's FinerCAM has no aug_smooth (its forward() refuses the keyword), torch-cam has no smoothing
    option: on the device they get the same definition, the mean of each augmented copy's min-max scaled map."""
    ex = Explainer.load(torch_zoo_dir / "bundles" / "fruit")
    x = _ref(torch_zoo_dir, "fruit")["x"][0]
    c = int(ex.explain_input(x).class_index)

    def same_noise() -> None:  # Smooth Grad-CAM++ draws noise per copy: the same draws, in the same order, both sides
        random = np.random.default_rng(0)
        monkeypatch.setattr(METHODS["smoothgradcampp"], "noise",
                            lambda shape: np.float32(0.3) * random.standard_normal(shape, np.float32))

    same_noise()
    maps = []
    for flip, factor in AUGMENTATIONS:
        cam = np.maximum(ex.explain_input(augment(x, flip, factor), method=method, target=c).cam_raw, 0)
        cam = (cam - cam.min()) / (1e-7 + (cam - cam.min()).max())
        maps.append(cam[:, ::-1] if flip else cam)
    expected = np.mean(maps, axis=0)
    same_noise()
    r = ex.explain_input(x, method=method, target=c, aug_smooth=True)
    assert_close_terms(r.cam_raw, expected, float(expected.max()))


def test_aug_smooth_runs_five_trunk_passes(torch_zoo_dir: Path) -> None:
    ex = Explainer.load(torch_zoo_dir / "bundles" / "fruit")
    x = _ref(torch_zoo_dir, "fruit")["x"][0]
    ex.explain_input(x, method="gradcam", aug_smooth=True)
    assert ex._trunk is not None and ex._trunk.passes == len(AUGMENTATIONS) - 1 == 5


def test_top_k_with_aug_smooth_shares_the_five_passes(torch_zoo_dir: Path) -> None:
    """The augmented copies' trunk passes are the frame's, not a class's: top_k classes make them once, and each
    class's map is the one explaining that class alone gives."""
    ex = Explainer.load(torch_zoo_dir / "bundles" / "fruit")
    x = _ref(torch_zoo_dir, "fruit")["x"][0]
    top = ex.explain_input(x, method="gradcam", top_k=3, aug_smooth=True)
    assert ex._trunk is not None and ex._trunk.passes == 5
    for r in top:
        alone = ex.explain_input(x, method="gradcam", target=r.class_index, aug_smooth=True)
        np.testing.assert_array_equal(r.cam_raw, alone.cam_raw)


def test_augment_is_ttach_order() -> None:
    """ttach's Compose: flip first, then the factor; its product enumerates the flip slowest."""
    assert AUGMENTATIONS == ((False, 0.9), (False, 1.0), (False, 1.1), (True, 0.9), (True, 1.0), (True, 1.1))
    x = np.arange(2 * 3 * 1, dtype=np.float32).reshape(2, 3, 1)
    np.testing.assert_array_equal(augment(x, True, 1.1), x[:, ::-1] * np.float32(1.1))
    assert augment(x, False, 1.0) is x
