"""The tutorials' ImageNet networks (keras.applications, weights=None with BatchNorm statistics from real photographs,
1000 classes) pass tools.verify with both checks reported. At reduced input sizes: the weights, the depth and the
head are full size, which is what float32 drift depends on. Built and verified once by
`python -m tools.verify.imagenet_models --small --verify`, cached under build/ by the content of the code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import REPO, _zoo_key, cached_build, run_python

MODELS = ["xception", "vgg16", "mobilenetv2", "resnet50", "efficientnetb0"]


@pytest.fixture(scope="module")
def reports() -> dict[str, dict]:
    out = cached_build(REPO / "build" / f"imagenet-small-{_zoo_key()}",
                       lambda path: run_python("-m", "tools.verify.imagenet_models", str(path), "--small", "--verify",
                                               str(REPO / "samples"), "--limit", "4", timeout=1800))
    found = {path.stem.rsplit("-", 1)[0]: json.loads(path.read_text()) for path in (out / "reports").glob("*.json")}
    assert sorted(found) == sorted(MODELS)
    for report in found.values():  # built aside and renamed: the bundles are where they are now
        report["bundle"] = str(out / "bundles" / Path(report["bundle"]).name)
    return found


@pytest.mark.parametrize("name", MODELS)
def test_imagenet_model_verifies_with_both_checks(reports: dict[str, dict], name: str) -> None:
    report = reports[name]
    assert report["passed"], json.dumps(report, indent=1)[:3000]
    for score in ("logit", "probability"):
        head, device = report["head"][score], report["scores"][score]
        assert head["images"] == 4 and head["passed"] and device["passed"]
        # the export's promise: TF's own activations through the NumPy head, to float32 rounding of its sums
        assert head["max_rel_cam_raw_diff"] <= report["tolerances"]["head"] <= 1e-3
        assert head["max_probability_diff"] <= report["tolerances"]["head"]
    assert report["feature_drift"]["max_rel"] <= report["tolerances"]["features"]
    assert report["tolerances"]["accumulating_layers"] >= 13  # the depth the tolerance was derived from
    assert report["scores"]["logit"]["mean_heatmap_correlation"] > 0.999


def test_targets_are_the_tutorials(reports: dict[str, dict]) -> None:
    from edge.explain.open_bundle import read_manifest

    targets = {name: read_manifest(Path(r["bundle"])).target_layer for name, r in reports.items()}
    assert targets["xception"] == "block14_sepconv2_act" and targets["vgg16"] == "block5_conv3"
    assert all(read_manifest(Path(r["bundle"])).num_classes == 1000 for r in reports.values())
