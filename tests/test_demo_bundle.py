"""The shipped demo: models/fruit gets every sample right, its heatmaps land on held-out fruit, and it is exact."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import MINI_DATA, REPO, run_python

from edge.explain.explainer import Explainer
from tools.data.fruitset import IMAGE_SUFFIXES

DEMO = REPO / "models" / "fruit"
DEMO_INT8 = REPO / "models" / "fruit-int8"
SAMPLES = REPO / "samples"


def _samples() -> list[Path]:
    return sorted(p for p in SAMPLES.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _read_rgb(path: Path) -> np.ndarray:
    import cv2

    return np.asarray(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB))


def test_samples_are_credited_and_named_after_their_fruit() -> None:
    files = _samples()
    assert len(files) >= 10
    assert "CC BY-SA 4.0" in (SAMPLES / "README.md").read_text()
    names = Explainer.load(DEMO).class_names
    assert all(any(c.lower() in p.name for c in names) for p in files)
    assert any("+" in p.name for p in files)  # a two-fruit frame


@pytest.mark.parametrize("bundle", [DEMO, DEMO_INT8], ids=["float", "int8"])
def test_demo_bundle_classifies_every_sample(bundle: Path) -> None:
    explainer = Explainer.load(bundle)
    for path in _samples():
        expected = [c for c in explainer.class_names if c.lower() in path.name]
        e = explainer.explain(_read_rgb(path))
        assert e.label in expected, (path.name, e.probabilities)
        assert e.cam.max() == pytest.approx(1.0)  # a live heatmap, not a switched-off one


def test_shipped_evaluation_belongs_to_the_shipped_bundle() -> None:
    report = json.loads((DEMO / "evaluation.json").read_text())
    assert report["bundle_sha256"] == Explainer.load(DEMO).manifest.sha256
    assert set(report) >= {"plain", "composite", "two_fruit"}


def test_shipped_int8_bundle_was_measured_against_the_shipped_float_one() -> None:
    """The int8 bundle ships only because its evaluation cleared both bars against this very float bundle."""
    report = json.loads((DEMO_INT8 / "evaluation.json").read_text())
    int8 = Explainer.load(DEMO_INT8)
    assert int8.manifest.features.dtype == "int8"
    assert report["bundle_sha256"] == int8.manifest.sha256
    agreement = report["agreement"]
    assert (REPO / agreement["reference"]).resolve() == DEMO.resolve()
    assert agreement["frames"] >= 400
    assert agreement["top1_agreement"] >= 0.99 and agreement["cam_correlation"] >= 0.95


def _agreement_on_samples(other: Path) -> dict[str, float]:
    from tools.common.agreement import Agreement

    agreement = Agreement(Explainer.load(DEMO), Explainer.load(other))
    for path in _samples():
        agreement.add(_read_rgb(path))
    return agreement.summary()


def test_agreement_tells_a_different_bundle_apart(tmp_path: Path) -> None:
    """The comparison that lets int8 ship is not blind: the float bundle fed BGR frames falls far below both bars."""
    shutil.copytree(DEMO, tmp_path / "bgr")
    manifest = json.loads((tmp_path / "bgr" / "manifest.json").read_text())
    manifest["preprocess"]["channel_order"] = "BGR"
    (tmp_path / "bgr" / "manifest.json").write_text(json.dumps(manifest))
    same = _agreement_on_samples(DEMO)
    assert same["top1_agreement"] == 1.0 and same["cam_correlation"] == pytest.approx(1.0)
    swapped = _agreement_on_samples(tmp_path / "bgr")
    assert swapped["top1_agreement"] < 0.9 and swapped["cam_correlation"] < 0.9


@pytest.mark.slow
def test_int8_follows_float_on_held_out_composited_frames(tmp_path: Path) -> None:
    """tools.evaluate --reference, measured here on the repo's own held-out fruit (not read from the shipped JSON)."""
    proc = run_python("-m", "tools.evaluate", str(DEMO_INT8), str(MINI_DATA), "--composite", "--json",
                      "--per-image", "3", "--per-pair", "2", "--reference", str(DEMO), "--out", str(tmp_path),
                      timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    agreement = json.loads(proc.stdout)["agreement"]
    assert agreement["frames"] >= 30
    assert agreement["top1_agreement"] >= 0.95 and agreement["cam_correlation"] >= 0.95


@pytest.mark.slow
def test_demo_heatmaps_land_on_held_out_fruit(tmp_path: Path) -> None:
    """tools/evaluate on the repo's own held-out images (test split of tests/data/fruits360-mini)."""
    proc = run_python("-m", "tools.evaluate", str(DEMO), str(MINI_DATA), "--composite", "--json", "--per-image", "3",
                      "--per-pair", "5", "--out", str(tmp_path), timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert report["plain"]["accuracy"] >= 0.93
    assert report["composite"]["accuracy"] >= 0.8 and report["composite"]["pointing_game"] >= 0.8
    assert report["composite"]["energy_in_mask_ratio"] >= 1.5
    assert report["two_fruit"]["energy_on_own_fruit"] >= 0.8


@pytest.mark.slow
def test_demo_bundle_is_exact_against_its_keras_model() -> None:
    proc = run_python("-m", "tools.verify", str(DEMO), "--model", str(REPO / "models" / "fruit.keras"),
                      "--images", str(SAMPLES), "--json", "--sheet", str(REPO / "build" / "demo-verify.png"),
                      timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert report["passed"] and report["scores"]["logit"]["max_rel_cam_raw_diff"] < 1e-4
