"""The PyTorch side of parity: the framework's own Grad-CAM (autograd) and pytorch-grad-cam's maps, raw (before their
ReLU and resize), for model inputs given NHWC as the bundle takes them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from tools.verify.tolerance import Tolerances

F32 = NDArray[np.float32]
# edge method name -> pytorch-grad-cam class name
GRAD_CAM_CLASSES = {"gradcam": "GradCAM", "gradcampp": "GradCAMPlusPlus", "layercam": "LayerCAM",
                    "xgradcam": "XGradCAM", "hirescam": "HiResCAM"}


def _nchw(x_nhwc: F32) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x_nhwc.transpose(2, 0, 1)))[None]


def _keep(out: torch.Tensor, captured: list[torch.Tensor]) -> torch.Tensor:
    """Forward hook body: keep the module's output A and its gradient, and hand the rest of the model a copy, so that
    an in-place op after the module (DenseNet's F.relu(features, inplace=True)) cannot overwrite the A kept here."""
    out.retain_grad()
    captured.append(out)
    return out.clone()


def probabilities(model: nn.Module, x_nhwc: F32) -> F32:
    """Softmax of the model's outputs (C,), as the device reports a model without an output activation."""
    with torch.no_grad():
        return torch.softmax(model(_nchw(x_nhwc)), dim=1)[0].numpy()


def autograd_gradcam(model: nn.Module, layer: nn.Module, x_nhwc: F32, class_index: int) -> F32:
    """Grad-CAM of the class logit by torch autograd: sum_k mean_ij(dy/dA_k) A_k, (h, w), before the ReLU."""
    captured: list[torch.Tensor] = []

    def keep(_m: nn.Module, _i: Any, out: torch.Tensor) -> torch.Tensor:
        return _keep(out, captured)

    hook = layer.register_forward_hook(keep)
    try:
        logits = model(_nchw(x_nhwc))
    finally:
        hook.remove()
    A = captured[-1]
    logits[0, class_index].backward()
    assert A.grad is not None
    weights = A.grad[0].mean(dim=(1, 2))  # (k,)
    return (weights[:, None, None] * A[0]).sum(0).detach().numpy()


def grad_cam_raw(model: nn.Module, layer: nn.Module, x_nhwc: F32, class_index: int, method: str = "gradcam") -> F32:
    """pytorch-grad-cam's map for one class, (h, w), before its ReLU and resize. For Grad-CAM++ its activations and
    gradients go through gradcampp_normalised (the alphas normalised as in the paper authors' code)."""
    import pytorch_grad_cam
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    cam = getattr(pytorch_grad_cam, GRAD_CAM_CLASSES[method])(model=model, target_layers=[layer])
    try:
        x = _nchw(x_nhwc)
        targets = [ClassifierOutputTarget(class_index)]
        outputs = cam.activations_and_grads(x)
        model.zero_grad()
        sum(t(o) for t, o in zip(targets, outputs, strict=True)).backward()
        activations = cam.activations_and_grads.activations[0].numpy()
        grads = cam.activations_and_grads.gradients[0].numpy()
        if method == "gradcampp":
            raw = gradcampp_normalised(activations, grads)
        else:
            raw = cam.get_cam_image(x, layer, targets, activations, grads, False)
    finally:
        cam.activations_and_grads.release()
    return np.asarray(raw[0], np.float32)


def gradcampp_normalised(activations: F32, grads: F32) -> F32:
    """pytorch-grad-cam's GradCAMPlusPlus alphas, g^2 / (2 g^2 + sum(A) g^3), normalised to sum to 1 over space per
    channel as the paper authors' code and tf-keras-vis do (pytorch-grad-cam leaves them unnormalised, which changes
    each channel's weight, not just the map's scale); (1, k, h, w) arrays -> (1, h, w)."""
    g, A = grads.astype(np.float64), activations.astype(np.float64)
    g2 = g * g
    denominator = 2.0 * g2 + A.sum(axis=(2, 3), keepdims=True) * g2 * g
    alpha = np.where(g != 0, g2 / np.where(denominator != 0.0, denominator, 1.0), 0.0)
    total = alpha.sum(axis=(2, 3), keepdims=True)
    alpha = alpha / np.where(total != 0.0, total, 1.0)
    weights = (alpha * np.maximum(g, 0.0)).sum(axis=(2, 3))  # (1, k)
    return np.einsum("nk,nkhw->nhw", weights, A).astype(np.float32)


def zhou_cam(model: nn.Module, layer: nn.Module, linear: nn.Linear, x_nhwc: F32, class_index: int) -> F32:
    """CAM (Zhou et al.): sum_k w_k^c A_k with the final Linear's weights, for GAP -> Linear heads; (h, w)."""
    captured: list[torch.Tensor] = []
    hook = layer.register_forward_hook(lambda _m, _i, out: captured.append(out))
    try:
        with torch.no_grad():
            model(_nchw(x_nhwc))
    finally:
        hook.remove()
    with torch.no_grad():
        return torch.einsum("k,khw->hw", linear.weight[class_index], captured[-1][0]).numpy()


@dataclass
class TorchReference:
    """One input's reference, with the fields tools.verify's comparison reads (as tools/verify/tf_reference.py's)."""

    probabilities: F32  # (C,)
    class_index: int
    cam_raw: F32  # (h, w) Grad-CAM before its ReLU
    activations: F32  # (h, w, k) A, NHWC as the bundle's features
    methods: dict[str, F32] = field(default_factory=dict)  # method -> raw map (h, w)


class TorchGradCamReference:
    """torch autograd Grad-CAM (and Grad-CAM++, LayerCAM, HiResCAM from the same A and dScore/dA) at a module, for
    models whose outputs are logits (the bundle's output activation 'none'; probabilities are their softmax)."""

    def __init__(self, model: nn.Module, target_layer: str) -> None:
        try:
            self.layer = model.get_submodule(target_layer)
        except AttributeError as e:
            raise ValueError(f"target {target_layer!r} is a traced node, not a module: the PyTorch reference hooks "
                             "modules (export with --target-layer MODULE to verify)") from e
        self.model = model.eval()

    def __call__(self, x_nhwc: F32, score: str, target: int | None = None) -> TorchReference:
        captured: list[torch.Tensor] = []

        def keep(_m: nn.Module, _i: Any, out: torch.Tensor) -> torch.Tensor:
            return _keep(out, captured)

        hook = self.layer.register_forward_hook(keep)
        try:
            logits = self.model(_nchw(x_nhwc))
        finally:
            hook.remove()
        probs = torch.softmax(logits, dim=1)
        c = int(probs[0].argmax()) if target is None else target
        (logits[0, c] if score == "logit" else probs[0, c]).backward()
        A = captured[-1][0].detach().double().numpy()  # (k, h, w)
        grad = captured[-1].grad
        assert grad is not None
        g = grad[0].double().numpy()  # (k, h, w)
        methods = {
            "gradcampp": gradcampp_normalised(A[None], g[None])[0],
            "layercam": (np.maximum(g, 0.0) * A).sum(axis=0).astype(np.float32),
            "hirescam": (g * A).sum(axis=0).astype(np.float32),
        }
        cam_raw = np.einsum("k,khw->hw", g.mean(axis=(1, 2)), A).astype(np.float32)
        activations = A.transpose(1, 2, 0).astype(np.float32)
        return TorchReference(probs[0].detach().numpy(), c, cam_raw, activations, methods)


def _fan_in(module: nn.Module) -> int:
    """The number of products each output of a Conv2d or Linear sums (0 for other modules)."""
    if isinstance(module, nn.Conv2d):
        return int(module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1])
    if isinstance(module, nn.Linear):
        return int(module.in_features)
    return 0


def tolerances(model: nn.Module, target_layer: str, head_dtype: str, user_scale: float = 1.0) -> Tolerances:
    """tools/verify/tolerance.py's float32 tolerances for a PyTorch model cut at a module: the accumulating modules
    registered up to the target's last submodule are the feature model's, those after it the head's (torchvision
    and most models register modules in forward order)."""
    features: list[int] = []
    head: list[int] = []
    seen_target = False
    for name, module in model.named_modules():
        inside = name == target_layer or name.startswith(f"{target_layer}.")
        seen_target = seen_target or inside
        fan_in = _fan_in(module)
        if fan_in:
            (head if seen_target and not inside else features).append(fan_in)
    return Tolerances(len(features), sum(features), sum(head), head_dtype, user_scale)
