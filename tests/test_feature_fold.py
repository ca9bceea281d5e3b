"""tools/export/keras/feature_fold: BatchNorms after ReLU convolutions folded at export; same features, less work."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import REPO, run_python

from edge.explain.explainer import Explainer

pytestmark = pytest.mark.slow


def _ops(bundle: Path) -> Counter[str]:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(bundle / "features.tflite"))
    return Counter(str(op["op_name"]) for op in interpreter._get_ops_details())


def test_fold_removes_the_batchnorm_multiplies_and_keeps_the_features(tmp_path: Path) -> None:
    model = REPO / "models" / "fruit.keras"  # the tutorials' Conv2D(relu) -> BatchNorm -> MaxPool blocks
    bundles = {}
    for name, extra in (("folded", ()), ("plain", ("--no-fold",))):
        bundles[name] = tmp_path / name
        proc = run_python("-m", "tools.export", str(model), "--out", str(bundles[name]), "--classes",
                          "Apfel,Orange,Tomate", "--preprocess", "unit", *extra, "--debug")
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert ("folded 4 BatchNorm(s)" in proc.stderr) == (name == "folded"), proc.stderr[-3000:]
    folded, plain = _ops(bundles["folded"]), _ops(bundles["plain"])
    assert plain["MUL"] == 4 and plain["ADD"] == 4
    assert folded["MUL"] == 0 and folded["ADD"] == 4 and folded["CONV_2D"] == plain["CONV_2D"] == 4
    a, b = Explainer.load(bundles["folded"]), Explainer.load(bundles["plain"])
    for path in sorted((REPO / "samples").glob("*.jpg")):
        frame = np.ascontiguousarray(cv2.imread(str(path))[:, :, ::-1])  # (H, W, 3) uint8 RGB
        x = a.preprocess(frame)
        fa, fb = a.features(x), b.features(x)  # (12, 12, 128) float32 each
        assert np.abs(fa - fb).max() <= 1e-5 * np.abs(fb).max(), path.name
        ea, eb = a.explain(frame), b.explain(frame)
        assert ea.class_index == eb.class_index
        np.testing.assert_allclose(ea.cam, eb.cam, rtol=0, atol=1e-4)
