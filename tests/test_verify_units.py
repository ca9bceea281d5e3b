"""tools.verify's metrics and verdict, on TensorFlow references recorded by the zoo (so without TensorFlow here):
exact bundles pass, a map or a probability off by more than the tolerance fails, and the correlation is Pearson's."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from tools.verify import verifier


@dataclass
class _Stored:
    probabilities: np.ndarray
    class_index: int
    cam_raw: np.ndarray
    methods: dict[str, np.ndarray] = field(default_factory=dict)


class StoredReference:
    """Stands in for GradCamReference: returns the zoo's TensorFlow results for the inputs it recorded them on,
    optionally with the map scaled and the probabilities shifted (a wrong bundle, seen from the other side)."""

    def __init__(self, ref: dict[str, np.ndarray], cam_factor: float = 1.0, probability_shift: float = 0.0) -> None:
        self.ref, self.cam_factor, self.probability_shift = ref, cam_factor, probability_shift

    def __call__(self, x: np.ndarray, score: str) -> _Stored:
        i = next(i for i, xi in enumerate(self.ref["x"]) if np.array_equal(xi, x))
        methods = {key.split("_method_")[1]: self.ref[key][i] for key in self.ref if key.startswith(f"{score}_method_")}
        return _Stored(self.ref[f"{score}_probabilities"][i] + np.float32(self.probability_shift),
                       int(self.ref[f"{score}_class_index"][i]), self.ref[f"{score}_cam_raw"][i] * self.cam_factor,
                       methods)


def _ref(zoo: Path, case: str) -> dict[str, np.ndarray]:
    with np.load(zoo / "refs" / f"{case}.npz") as npz:
        return {name: npz[name] for name in npz.files}


@pytest.mark.parametrize("score", ["logit", "probability"])
def test_an_exact_bundle_passes_and_a_wrong_one_fails(zoo: Path, score: str) -> None:
    ref = _ref(zoo, "fruit_conv4")
    bundle = zoo / "bundles" / "fruit_conv4"
    exact, _ = verifier.compare(StoredReference(ref), bundle, ref["x"], score)
    assert exact["images"] == len(ref["x"]) and exact["top1_agreement"] == 1.0
    assert exact["max_rel_cam_raw_diff"] < verifier.CAM_TOLERANCE
    assert exact["max_abs_cam_raw_diff"] <= exact["max_rel_cam_raw_diff"] * np.abs(ref[f"{score}_cam_raw"]).max()
    assert exact["max_probability_diff"] < verifier.PROBABILITY_TOLERANCE
    assert exact["mean_heatmap_correlation"] == pytest.approx(1.0, abs=1e-6)
    assert verifier.passed(exact, "float32")

    scaled, _ = verifier.compare(StoredReference(ref, cam_factor=1.001), bundle, ref["x"], score)
    assert scaled["max_rel_cam_raw_diff"] == pytest.approx(0.001 / 1.001, rel=0.05)
    assert scaled["mean_heatmap_correlation"] == pytest.approx(1.0, abs=1e-6)  # a scale keeps the shape
    assert not verifier.passed(scaled, "float32")
    shifted, _ = verifier.compare(StoredReference(ref, probability_shift=2e-5), bundle, ref["x"], score)
    assert shifted["max_probability_diff"] == pytest.approx(2e-5, rel=0.2)
    assert not verifier.passed(shifted, "float32")
    assert verifier.passed(shifted, "int8")  # int8 agreement is reported, not required


def test_verdict_thresholds() -> None:
    good = {"top1_agreement": 1.0, "max_rel_cam_raw_diff": 1e-4, "max_probability_diff": 1e-5}
    assert verifier.passed(good, "float32")  # the tolerances are inclusive
    assert not verifier.passed(good | {"top1_agreement": 0.99}, "float32")
    assert not verifier.passed(good | {"max_rel_cam_raw_diff": 1.1e-4}, "float32")
    assert not verifier.passed(good | {"max_probability_diff": 1.1e-5}, "float32")
    # Grad-CAM++ gets ten times the map tolerance (its alphas are ill-conditioned), no other method does
    assert verifier.passed(good | {"max_rel_cam_raw_diff": 9e-4}, "float32", "gradcampp")
    assert not verifier.passed(good | {"max_rel_cam_raw_diff": 1.1e-3}, "float32", "gradcampp")
    assert not verifier.passed(good | {"max_rel_cam_raw_diff": 9e-4}, "float32", "layercam")


def test_pearson_correlation() -> None:
    rng = np.random.default_rng(0)
    a, noise = rng.normal(size=(6, 7)), rng.normal(size=(6, 7))
    b = a + 0.5 * noise
    assert verifier._pearson(a, b) == pytest.approx(np.corrcoef(a.ravel(), b.ravel())[0, 1], rel=1e-9)
    assert verifier._pearson(a, -3 * a + 1) == pytest.approx(-1.0)
    flat = np.full((6, 7), 2.0)
    assert verifier._pearson(flat, flat.copy()) == 1.0  # two flat maps are the same map
    assert verifier._pearson(flat, flat + 1) == 1.0  # ... up to an offset, which Pearson ignores
    assert verifier._pearson(flat, a) == 0.0


def test_images_are_read_as_rgb_and_spread_over_the_folders(tmp_path: Path) -> None:
    import cv2

    for folder, colour in (("a", (0, 0, 255)), ("b", (255, 0, 0))):  # BGR red, BGR blue
        (tmp_path / folder).mkdir()
        for i in range(4):
            cv2.imwrite(str(tmp_path / folder / f"{i}.png"), np.full((8, 8, 3), colour, np.uint8))
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    paths, images = verifier.load_images(tmp_path, 2)
    assert [p.parent.name for p in paths] == ["a", "b"]  # one from each folder, not the first two of "a"
    assert tuple(images[0][0, 0]) == (255, 0, 0) and tuple(images[1][0, 0]) == (0, 0, 255)  # RGB
    (tmp_path / "empty").mkdir()
    with pytest.raises(verifier.VerifyError, match="no readable images"):
        verifier.load_images(tmp_path / "empty", 3)


def test_other_methods_and_the_reference_class_reach_the_edge_side(zoo: Path) -> None:
    """compare() asks the edge side for the method it checks and for TensorFlow's class, not its own top-1."""
    from edge import Explainer

    ref = _ref(zoo, "fruit_conv4")
    bundle = zoo / "bundles" / "fruit_conv4"
    layercam, _ = verifier.compare(StoredReference(ref), bundle, ref["x"], "logit", method="layercam")
    assert verifier.passed(layercam, "float32", "layercam"), layercam
    second = StoredReference(ref)
    runner_up = [int(np.argsort(p)[-2]) for p in ref["logit_probabilities"]]
    second.ref = dict(ref, logit_class_index=np.array(runner_up))
    metrics, edge = verifier.compare(second, bundle, ref["x"], "logit")
    assert metrics["top1_agreement"] == 0.0  # the edge's top-1 is not the class it was told
    ex = Explainer.load(bundle)
    for i, x in enumerate(ref["x"]):
        np.testing.assert_allclose(edge["cam_raw"][i], ex.explain_input(x, target=runner_up[i]).cam_raw, rtol=1e-5,
                                   atol=1e-6)
    gap = _ref(zoo, "mobilenet_gap")  # the edge side can do CAM here; a reference without it must be refused
    without_cam = {key: value for key, value in gap.items() if not key.endswith("_method_cam")}
    with pytest.raises(verifier.VerifyError, match=r"method 'cam' has no TensorFlow reference for this model"):
        verifier.compare(StoredReference(without_cam), zoo / "bundles" / "mobilenet_gap", gap["x"], "logit", "cam")


def test_every_image_is_read_when_there_are_fewer_than_the_limit(tmp_path: Path) -> None:
    import cv2

    for i in range(5):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.full((4, 4, 3), 40 * i, np.uint8))
    paths, images = verifier.load_images(tmp_path, 32)
    assert [p.name for p in paths] == [f"{i}.png" for i in range(5)] and len(images) == 5
