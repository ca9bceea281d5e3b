"""The CAM family's PyTorch-side references for tools.verify: pytorch-grad-cam's and torch-cam's own classes
(tools/verify/cam_family.py) on the module the bundle was cut from, for PyTorch, .pt2 and ONNX bundles (onnx2torch's
graph of the same file), with the device's seeds and samples for the random and noise methods.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import nn

from tools.verify import cam_family, family
from tools.verify.torch_reference import F32


class _OneByOne(nn.Module):  # type: ignore[misc,unused-ignore]  # (torch untyped where not installed)
    """A .pt2 program (exported for a batch of 1) run item by item on the batches the references' passes make. Its
    mode is the one it was exported in: train() and eval() leave it as it is (torch refuses them on a program)."""

    def __init__(self, program: nn.Module) -> None:
        super().__init__()
        self.program = program

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.program(x[i : i + 1]) for i in range(x.shape[0])])

    def train(self, mode: bool = True) -> _OneByOne:
        return self


def _model_and_layer(reference: Any, one_by_one: bool) -> tuple[nn.Module, nn.Module]:
    """The torch module and target module that a TorchGradCamReference (or the ONNX one's inner one) hooks."""
    inner = getattr(reference, "grad_cam", reference)
    return (_OneByOne(inner.model) if one_by_one else inner.model), inner.layer


def _product(model: nn.Module, layer: nn.Module, x_nhwc: F32, class_index: int, score: str) -> F32:
    """sum_k g^k A^k (h, w) by autograd: the orientation of Eigen-Grad-CAM's map, whose SVD leaves its sign open."""
    kept: list[torch.Tensor] = []

    def keep(_m: nn.Module, _i: Any, out: torch.Tensor) -> torch.Tensor:
        out.retain_grad()
        kept.append(out)
        return out.clone()

    hook = layer.register_forward_hook(keep)
    try:
        logits = model(cam_family.nchw(x_nhwc))
    finally:
        hook.remove()
    value = logits[0, class_index] if score == "logit" else torch.softmax(logits, dim=1)[0, class_index]
    value.backward()
    A, g = kept[-1], kept[-1].grad
    assert g is not None
    return (g[0] * A[0]).sum(0).detach().numpy()


class _HardSigmoid(nn.Module):  # type: ignore[misc,unused-ignore]  # (torch untyped where not installed)
    """torch's Hardsigmoid, relu6(x + 3) / 6, from ops whose second derivative torch has (hardsigmoid_backward has
    none, so pytorch-grad-cam's ShapleyCAM fails on a head that holds one)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.relu6(x + 3.0) / 6.0


@contextmanager
def _twice_differentiable(model: nn.Module) -> Iterator[None]:
    """The model with every nn.Hardsigmoid replaced by _HardSigmoid (the same function), put back afterwards."""
    swapped = [(parent, name, child) for parent in model.modules() for name, child in parent.named_children()
               if isinstance(child, nn.Hardsigmoid)]
    for parent, name, _ in swapped:
        setattr(parent, name, _HardSigmoid())
    try:
        yield
    finally:
        for parent, name, child in swapped:
            setattr(parent, name, child)


def _nchw_noise(method: str, seed: int, shape: tuple[int, ...], samples: int) -> list[F32]:
    return [n.transpose(2, 0, 1)[None] for n in family.noise(method, seed, shape, samples)]


def reference_map(reference: Any, x_nhwc: F32, A: F32, class_index: int, score: str, method: str, seed: int,
                  samples: int, one_by_one: bool = False) -> tuple[F32, float | None]:
    """A family method's reference map (h, w) for one NHWC model input whose activations are A (h, w, k), and the
    size its rounding scales with where that is not the map's own (None). `one_by_one`: the model takes one input
    at a time (a .pt2 program)."""
    model, layer = _model_and_layer(reference, one_by_one)
    if method in family.LOGIT_ONLY_TORCH:
        noise = None
        if method == "sscam":
            noise = _nchw_noise(method, seed, (*x_nhwc.shape[:2], A.shape[-1]), samples)
        elif method == "smoothgradcampp":
            noise = _nchw_noise(method, seed, x_nhwc.shape, samples)
        return cam_family.torchcam_raw(model, layer, x_nhwc, class_index, method, noise, samples), None
    if method == "randomcam":
        np.random.seed(seed)  # pytorch-grad-cam draws from NumPy's global generator
    with _twice_differentiable(model):
        out = cam_family.grad_cam_family_raw(model, layer, x_nhwc, class_index, method, score)
    if method == "eigengradcam":
        orient = _product(model, layer, x_nhwc, class_index, score)
        if float(((out - out.mean()) * orient).sum()) < 0:
            out = -out
    scale = None
    if method == "randomcam":
        scale = float(np.abs(A.astype(np.float64) * family.random_weights(seed, A.shape[-1])).sum(-1).max())
    return out, scale
