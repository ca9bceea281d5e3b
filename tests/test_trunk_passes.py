"""TrunkPasses: a batch of model inputs through a second interpreter gives what the explainer gives one at a time, on
both runtimes, float32 and int8, batched and one by one (the shared path of faithfulness scores and Score-CAM)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from conftest import REPO

from edge import Explainer
from edge.errors import InputError
from edge.explain.trunk_passes import TrunkPasses

RUNTIMES = [r for r, m in (("ai_edge_litert", "ai_edge_litert"), ("tflite_runtime", "tflite_runtime"))
            if importlib.util.find_spec(m) is not None]


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("bundle", ["fruit", "fruit-int8"])
@pytest.mark.parametrize(("batch", "n"), [(1, 6), (4, 6), (8, 10)])  # remainders of 2: padded to 4, one by one for 8
def test_batch_equals_the_explainer(runtime: str, bundle: str, batch: int, n: int) -> None:
    explainer = Explainer.load(REPO / "models" / bundle, runtime=runtime, num_threads=1)
    passes = TrunkPasses.for_explainer(explainer, batch=batch)
    assert passes.batch == batch and passes.runtime == runtime
    rng = np.random.default_rng(0)
    xs = rng.random((n, *explainer.manifest.input_shape), dtype=np.float32)  # (n, 100, 100, 3): short last batches
    out = passes(xs)
    assert passes.passes == n
    for i, x in enumerate(xs):
        A = explainer.features(x)
        np.testing.assert_array_equal(passes.features(xs[i:i + 1])[0], A)
        hp = explainer.head.forward(A)
        np.testing.assert_array_equal(out.logits[i], hp.logits)
        np.testing.assert_array_equal(out.probabilities[i], hp.probabilities)
    chunked = passes.in_chunks(n, lambda a, b: xs[a:b], chunk=4)
    np.testing.assert_array_equal(chunked.logits, out.logits)


def test_wrong_shape_is_an_input_error() -> None:
    passes = TrunkPasses.for_explainer(Explainer.load(REPO / "models" / "fruit", num_threads=1))
    with pytest.raises(InputError, match="expected model inputs of shape"):
        passes(np.zeros((2, 50, 50, 3), np.float32))
    assert passes.in_chunks(0, lambda a, b: np.zeros((0, 100, 100, 3), np.float32)).logits.shape == (0, 3)
