"""int8 feature models load and run on both TFLite runtimes and stay close to the float model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge import Explainer


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
        assert np.corrcoef(q.cam_raw.ravel(), f.cam_raw.ravel())[0, 1] > 0.9


@pytest.mark.parametrize("runtime", ["tflite_runtime", "ai_edge_litert"])
def test_float_bundles_run_on_both_runtimes(zoo: Path, runtime: str) -> None:
    for case in ("fruit_bn", "mobilenet_gap"):
        a = Explainer.load(zoo / "bundles" / case, runtime=runtime)
        b = Explainer.load(zoo / "bundles" / case, runtime="auto")
        frame = np.full((120, 90, 3), 77, np.uint8)
        np.testing.assert_allclose(a.explain(frame).cam_raw, b.explain(frame).cam_raw, rtol=1e-4, atol=1e-5)
