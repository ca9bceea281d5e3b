"""int8 feature models load and run on both TFLite runtimes and stay close to the float model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from comparisons import correlation
from conftest import REPO, run_python

from edge import Explainer
from edge.explain.bundle_check import sha256_file
from edge.explain.head import Head
from edge.explain.head_ops import Dense


@pytest.mark.parametrize("runtime", ["tflite_runtime", "ai_edge_litert"])
def test_int8_bundle_runs_on_both_runtimes(zoo: Path, runtime: str) -> None:
    ex = Explainer.load(zoo / "bundles" / "fruit_int8", runtime=runtime)
    assert ex.features.runtime == runtime
    assert ex.manifest.features.dtype == "int8" and ex.features.input_dtype == np.int8
    float_ex = Explainer.load(zoo / "bundles" / "fruit_bn", runtime=runtime)
    with np.load(zoo / "refs" / "fruit_int8.npz") as ref:
        frames = ref["frames"]
    for frame in frames:
        q, f = ex.explain(frame), float_ex.explain(frame)
        assert q.class_index == f.class_index
        np.testing.assert_allclose(q.probabilities, f.probabilities, atol=0.02)
        # cam_raw, not cam: on an untrained model a whole map can be negative, and cam then all zeros
        assert correlation(q.cam_raw, f.cam_raw) > 0.9


@pytest.mark.parametrize("runtime", ["tflite_runtime", "ai_edge_litert"])
def test_float_bundles_run_on_both_runtimes(zoo: Path, runtime: str) -> None:
    for case in ("fruit_bn", "mobilenet_gap"):
        a = Explainer.load(zoo / "bundles" / case, runtime=runtime)
        b = Explainer.load(zoo / "bundles" / case, runtime="auto")
        frame = np.full((120, 90, 3), 77, np.uint8)
        np.testing.assert_allclose(a.explain(frame).cam_raw, b.explain(frame).cam_raw, rtol=1e-4, atol=1e-5)


def _agreement(bundle: Path, reference: Path) -> dict[str, float]:
    """The benchmark's comparison command, as the README runs it, on the twelve real photographs in samples/."""
    proc = run_python("-m", "tools.bench.edge_side", str(bundle), "--compare", str(reference), "--images",
                      str(REPO / "samples"), timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["images"] == 12
    return report


def _classes_rolled(bundle: Path, out: Path) -> Path:
    """The same network with its last Dense layer's outputs rolled by one: every frame's top-1 class moves."""
    shutil.copytree(bundle, out)
    head = Head.load(out / "head.npz")
    last = head.ops[-1]
    assert isinstance(last, Dense)
    head.ops[-1] = Dense(np.roll(last.kernel, 1, axis=1), np.roll(last.bias, 1))
    head.save(out / "head.npz")
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["files"]["head.npz"] = sha256_file(out / "head.npz")
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


@pytest.mark.slow
def test_the_comparison_scores_a_different_bundle_lower(zoo: Path, tmp_path: Path) -> None:
    """The int8 figures are only meaningful if the comparison can give a low one: another network of the same shape
    (fruit_other: same architecture, other weights) and the same network with its classes renamed must score below
    the int8 bundle. A comparison that always reported 1.0 fails here."""
    float_bundle = zoo / "bundles" / "fruit_bn"
    int8 = _agreement(zoo / "bundles" / "fruit_int8", float_bundle)
    other = _agreement(zoo / "bundles" / "fruit_other", float_bundle)
    rolled = _agreement(_classes_rolled(float_bundle, tmp_path / "rolled"), float_bundle)
    print(f"agreement / correlation: int8 {int8}, other network {other}, classes rolled {rolled}")
    assert int8["top1_agreement"] >= 0.9 and int8["cam_correlation"] > 0.9
    assert other["top1_agreement"] < int8["top1_agreement"]
    assert other["cam_correlation"] < int8["cam_correlation"] - 0.3
    assert rolled["top1_agreement"] == 0.0  # every top-1 moved to the next class
