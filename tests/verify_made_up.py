"""Made-up TensorFlow references and edge outputs whose differences are chosen, for the tests of tools.verify's
verdict without TensorFlow (tests/test_verify_judge.py, tests/test_verify_report_cli.py)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np

from tools.verify import tolerance, verifier

N, C = 4, 3
TOL = tolerance.Tolerances(layers=6, fan_in_sum=4000, head_fan_in_sum=300, head_dtype="float32")


def made_up_refs(seed: int = 0, probability_map: float = 0.5) -> dict[str, list[Any]]:
    """TensorFlow's side: per score, per image, activations (4, 4, 8), maps (4, 4), probabilities (C,), the class."""
    rng = np.random.default_rng(seed)
    activations = rng.uniform(0.1, 1.0, (N, 4, 4, 8)).astype(np.float32)
    refs: dict[str, list[Any]] = {}
    for s, score in enumerate(("logit", "probability")):
        refs[score] = []
        for i in range(N):
            p = np.full(C, 0.1, np.float32)
            p[i % C] = 0.8
            cam = rng.uniform(0.5, 2.0, (4, 4)).astype(np.float32) * (probability_map if s else 1.0)
            refs[score].append(SimpleNamespace(activations=activations[i], cam_raw=cam, probabilities=p,
                                               class_index=i % C, methods={"gradcampp": 2 * cam}))
    return refs


def exact_edge(refs: dict[str, list[Any]], method: str = "gradcam") -> dict[str, np.ndarray]:
    """The edge side agreeing with TensorFlow exactly."""
    edge = {"features": np.stack([r.activations for r in refs["logit"]])}
    for score, rs in refs.items():
        cam = np.stack([verifier._reference_map(r, method) for r in rs])
        p = np.stack([r.probabilities for r in rs])
        edge |= {f"{score}_head_cam_raw": cam, f"{score}_head_probabilities": p, f"{score}_cam_raw": cam.copy(),
                 f"{score}_probabilities": p.copy()}
    return edge


def nudged(edge: dict[str, np.ndarray], key: str, relative: float) -> dict[str, np.ndarray]:
    """edge with one pixel (of image 1) of `key` moved by `relative` times that image's peak |value|."""
    out = {k: v.copy() for k, v in edge.items()}
    out[key][1].flat[1] += relative * np.abs(out[key][1]).max()
    return out

