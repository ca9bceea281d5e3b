"""Faithfulness scores on the device equal the anchors' own on the very model: pytorch-grad-cam 1.5.7's confidence
change / drop / increase (within 1e-4) and ROAD (within 1e-3, its imputation's noise at 0 on both sides), torch-cam
0.5's deletion / insertion AUC (within 1e-3), for the torch zoo's ResNet18, MobileNetV3-small and fruit CNN, the top
class and a non-top one. The anchors run in a subprocess (tools.verify.faithfulness_refs, cached under build/)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, cached_build, run_python
from torch_support import cached_zoo, zoo_key

from edge import Explainer
from edge.explain.faithfulness import FaithfulnessScorer, anchor_map
from edge.explain.trunk_passes import TrunkPasses

pytest.importorskip("torch", reason="the anchors need requirements-torch.txt")
pytest.importorskip("torchcam", reason="the anchors need requirements-torch.txt")
pytest.importorskip("scipy", reason="ROAD's imputation needs SciPy (requirements-tools.txt)")

CASES = ["resnet18", "mobilenet_v3_small", "fruit"]
TOLERANCES = {"confidence_change": 1e-4, "drop_in_confidence": 1e-4, "increase_in_confidence": 1e-4,
              "deletion_auc": 1e-3, "insertion_auc": 1e-3, "road_morf": 1e-3, "road_lerf": 1e-3}


@pytest.fixture(scope="session")
def anchors() -> tuple[Path, Path]:
    """(torch zoo, the anchors' scores), the latter built once per content of the zoo and of its generator."""
    zoo = cached_zoo("tools.verify.torch_zoo", "torchzoo", "torch_*.py")
    generator = REPO / "tools" / "verify" / "faithfulness_refs.py"
    key = hashlib.sha256(zoo_key("torch_*.py").encode() + generator.read_bytes()).hexdigest()[:16]
    return zoo, cached_build(REPO / "build" / f"faithrefs-{key}",
                             lambda path: run_python("-m", "tools.verify.faithfulness_refs", str(zoo), str(path)))


@pytest.mark.parametrize("case", CASES)
def test_scores_equal_the_anchors(anchors: tuple[Path, Path], case: str) -> None:
    from tools.evaluate.road import road_scores

    zoo, refs_dir = anchors
    explainer = Explainer.load(zoo / "bundles" / case, num_threads=1)
    passes = TrunkPasses.for_explainer(explainer)
    scorers = {score: FaithfulnessScorer(passes, score=score) for score in ("probability", "logit")}
    with np.load(zoo / "refs" / f"{case}.npz") as npz:
        xs = npz["x"]
    with np.load(refs_dir / f"{case}.npz") as npz:
        ref = {name: npz[name] for name in npz.files}
    assert len({c for _, c in ref["input_class"].tolist()}) > 1, "one class for every row: a weak test"
    for row, (i, c) in enumerate(ref["input_class"].tolist()):
        r = explainer.explain_input(xs[i], target=c)
        cam = anchor_map(r.cam_raw, explainer.manifest.input_shape[:2])
        np.testing.assert_allclose(cam, ref["cam"][row], rtol=0, atol=1e-3)
        for score, scorer in scorers.items():
            got = scorer(xs[i], r.cam_raw, c).scores  # the whole device path, from the raw map
            got.update(road_scores(scorer, xs[i], cam, c, noise=0.0))
            # Deletion and insertion rank the pixels: the device's map and the anchor's, equal within ~1e-5, order a
            # few near-equal pixels differently, and one pixel moves a point of an untrained model's curve. Ranked by
            # the anchor's own map, the rest of the computation is compared exactly.
            same_map = scorer.score_map(xs[i], ref["cam"][row], c)
            assert same_map.note is None
            got.update({name: same_map.scores[name] for name in ("deletion_auc", "insertion_auc")})
            for name, tolerance in TOLERANCES.items():
                expected = float(ref[f"{score}/{name}"][row])
                assert got[name] == pytest.approx(expected, abs=tolerance), (score, name, row)
    # Scores well away from 0 in some rows: a wrong score cannot pass by being ~0 on both sides.
    for name, tolerance in TOLERANCES.items():
        if name != "increase_in_confidence":
            assert np.abs(ref[f"logit/{name}"]).max() > 10 * tolerance, name
