"""Property-based tests: odd frames and odd manifests give a frame, a result or a specific error, never a crash."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from conftest import REPO
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from edge.errors import BundleError
from edge.explain.explainer import Explainer
from edge.explain.open_bundle import read_manifest
from edge.sources.base import SourceError, to_rgb8

DEMO = REPO / "models" / "fruit"
DTYPES = st.sampled_from([np.uint8, np.uint16, np.int32, np.int64, np.float32, np.float64, np.bool_])
SHAPES = hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=12)


@settings(max_examples=300, deadline=None)
@given(hnp.arrays(DTYPES, SHAPES), st.sampled_from(["BGR", "RGB"]))
def test_any_array_becomes_an_rgb_frame_or_a_source_error(image: np.ndarray, order: str) -> None:
    before = image.copy()
    try:
        rgb = to_rgb8(image, order)
    except SourceError:
        return
    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3 and rgb.shape[:2] == image.shape[:2]
    np.testing.assert_array_equal(image, before)  # the caller's frame is not modified


_EXPLAINER: list[Explainer] = []


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.uint8, st.tuples(st.integers(1, 40), st.integers(1, 40), st.just(3))))
def test_any_rgb_frame_is_explained_finitely(frame: np.ndarray) -> None:
    if not _EXPLAINER:
        _EXPLAINER.append(Explainer.load(DEMO))
    e = _EXPLAINER[0].explain(frame)
    assert np.isfinite(e.probabilities).all() and abs(float(e.probabilities.sum()) - 1) < 1e-4
    assert np.isfinite(e.cam).all() and e.cam.min() >= 0 and e.cam.max() <= 1


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True)
                           | st.text(max_size=8), lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=6), inner, max_size=4), max_leaves=10)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_any_manifest_is_read_or_refused_with_a_bundle_error(tmp_path: Path, data: st.DataObject) -> None:
    bundle = tmp_path / "b"
    if not bundle.exists():
        shutil.copytree(DEMO, bundle)
    raw: dict[str, Any] = json.loads((DEMO / "manifest.json").read_text())
    keys = sorted(raw)
    for key in data.draw(st.lists(st.sampled_from(keys), max_size=3, unique=True)):
        if data.draw(st.booleans()):
            del raw[key]
        else:
            raw[key] = data.draw(JSON_VALUES)
    (bundle / "manifest.json").write_text(json.dumps(raw))
    try:
        read_manifest(bundle)
    except BundleError as e:
        assert "manifest.json" in str(e)
