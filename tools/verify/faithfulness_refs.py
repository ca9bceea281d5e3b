"""python -m tools.verify.faithfulness_refs TORCH_ZOO OUT: the anchors' faithfulness scores for the tests.

For the torch zoo's ResNet18, MobileNetV3-small and fruit CNN (the very state_dicts their bundles were exported from)
and each of its reference inputs, with the top class and the second: pytorch-grad-cam 1.5.7's Grad-CAM map as its
__call__ returns it, and, with the class's softmax probability and with its logit as the score: its
CamMultImageConfidenceChange / DropInConfidence / IncreaseInConfidence, ROAD most- and least-relevant-first at its
default percentiles (80, 20) with the imputation's noise set to 0 (its torch.randn noise cannot be drawn the same in
NumPy), and torch-cam 0.5's deletion / insertion AUC on that same map (DeletionInsertionMetric, its default 20 steps
and zero baseline). The logit keeps the 1000-class models' scores far from 0, so that a wrong score cannot pass within
the tolerance.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.metrics.cam_mult_image import CamMultImageConfidenceChange, DropInConfidence, IncreaseInConfidence
from pytorch_grad_cam.metrics.perturbation_confidence import (
    PerturbationConfidenceMetric,
    RemoveLeastRelevantFirst,
    RemoveMostRelevantFirst,
)
from pytorch_grad_cam.metrics.road import NoisyLinearImputer
from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget, ClassifierOutputTarget
from torchcam.metrics import DeletionInsertionMetric

from tools.export.torch import model_spec
from tools.verify.torch_zoo import CASES

FAITHFULNESS_CASES = ("resnet18", "mobilenet_v3_small", "fruit")


class FixedMap:
    """torch-cam's CAM-extractor protocol around one given map: the metric ranks pixels by pytorch-grad-cam's map."""

    def __init__(self, model: torch.nn.Module, cam: torch.Tensor) -> None:
        self.model = model
        self.cam = cam  # (1, H, W) float32

    def __call__(self, class_idx: Any = None, scores: Any = None, normalized: bool = True, *, targets: Any = None,
                 **kwargs: Any) -> list[torch.Tensor]:
        return [self.cam]

    def fuse_cams(self, cams: list[torch.Tensor]) -> torch.Tensor:
        return cams[0]

    @contextlib.contextmanager
    def _hooks_off(self) -> Iterator[None]:
        yield


def scores_for(net: torch.nn.Module, layer: torch.nn.Module, x: torch.Tensor, c: int) -> dict[str, np.ndarray]:
    """Every anchor score of class c's Grad-CAM on one NCHW input."""
    with GradCAM(model=net, target_layers=[layer]) as cam_fn:
        cams = cam_fn(input_tensor=x, targets=[ClassifierOutputTarget(c)])  # (1, H, W) float32
    out: dict[str, np.ndarray] = {"cam": cams[0]}
    for score, target, logits_fn in (("probability", ClassifierOutputSoftmaxTarget(c), partial(torch.softmax, dim=-1)),
                                     ("logit", ClassifierOutputTarget(c), None)):
        metrics = {"confidence_change": CamMultImageConfidenceChange(), "drop_in_confidence": DropInConfidence(),
                   "increase_in_confidence": IncreaseInConfidence(),
                   "road_morf": PerturbationConfidenceMetric(RemoveMostRelevantFirst(80, NoisyLinearImputer(0.0))),
                   "road_lerf": PerturbationConfidenceMetric(RemoveLeastRelevantFirst(20, NoisyLinearImputer(0.0)))}
        for name, metric in metrics.items():
            out[f"{score}/{name}"] = np.asarray(metric(x, cams, [target], net)[0], np.float32)
        deletion_insertion = DeletionInsertionMetric(FixedMap(net, torch.from_numpy(cams)), logits_fn)
        deletion_insertion.update(x, class_idx=c)
        for name, value in deletion_insertion.summary().items():
            out[f"{score}/{name}"] = np.asarray(value, np.float32)
    return out


def case_refs(zoo: Path, name: str) -> dict[str, np.ndarray]:
    case = CASES[name]
    net = model_spec.load(case.logits_model or case.model, zoo / "models" / f"{name}.pth")
    net.eval()
    layer = net.get_submodule(case.target)
    with np.load(zoo / "refs" / f"{name}.npz") as npz:
        xs, probabilities = npz["x"], npz["probabilities"]
    rows: list[dict[str, np.ndarray]] = []
    classes = []
    for i, x in enumerate(xs):
        x_nchw = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]
        for c in np.argsort(-probabilities[i], kind="stable")[:2]:  # the top class and a non-top one
            rows.append(scores_for(net, layer, x_nchw, int(c)))
            classes.append((i, int(c)))
    refs = {key: np.stack([row[key] for row in rows]) for key in rows[0]}
    refs["input_class"] = np.asarray(classes, np.int64)  # (n, 2): index into x, class
    return refs


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.verify.faithfulness_refs", description=__doc__.splitlines()[0])
    p.add_argument("torch_zoo", type=Path)
    p.add_argument("out", type=Path)
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    for name in FAITHFULNESS_CASES:
        np.savez(args.out / f"{name}.npz", **case_refs(args.torch_zoo, name))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
