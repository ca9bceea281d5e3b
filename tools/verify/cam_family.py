"""pytorch-grad-cam 1.5.7's own maps for the CAM family, raw: its method classes run their own forward (targets,
backward, Hessian-vector product, ablation passes) and only the last step, ReLU -> min-max scaling -> resize, is left
out, so that the device's raw map (h, w) compares with theirs before any ReLU.

Corrections, where pytorch-grad-cam does something its method does not mean (docs/cam-methods.md):
- It keeps the target layer's output tensor itself (detached, same storage), so an in-place op after the layer
  (torchvision DenseNet's F.relu(features, inplace=True)) overwrites the activations it then weights, as
  tools/verify/torch_reference.py notes for Grad-CAM. A hook after theirs hands the rest of the model a copy.
- AblationCAM on a layer that can be negative: its AblationLayer sets the ablated channel to min(batch) - 1e7 for one
  batch item after another, and the minimum it reads already includes the items ablated before, so the n-th channel
  of each batch of 32 gets min - n * 1e7. The layer below reads the minimum once: every channel gets min - 1e7, the
  rule it means.
- ScoreCAM upsamples in float32: a constant channel (a channel that a ReLU zeroed, behind a BatchNorm) comes out
  with rounding errors of ~1e-7, which its min-max scaling stretches to a full-contrast mask of noise (for 0/0). The
  upsampling here runs in float64, so such a channel's mask is 0, as on the device.
- eigen_smooth's get_2d_projection keeps the sign its SVD gives (LAPACK's choice, arbitrary): with aug_smooth, one
  augmented copy's map can come out as its complement after the ReLU. signed_projection() gives it the device's sign
  (correlating positively with the weighted activations' channel sum), the projection itself untouched.
- ShapleyCAM keeps non-detached gradients, and its release() fails ("Can't detach views in-place") when the
  gradient is a view (a Flatten after the target layer): the hooks are removed here without detaching.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

F32 = NDArray[np.float32]
# edge method name -> pytorch-grad-cam class name
CLASSES = {
    "gradcam": "GradCAM", "gradcampp": "GradCAMPlusPlus", "xgradcam": "XGradCAM", "layercam": "LayerCAM",
    "hirescam": "HiResCAM", "eigencam": "EigenCAM", "gradcamelementwise": "GradCAMElementWise",
    "eigengradcam": "EigenGradCAM", "kpcacam": "KPCA_CAM", "fem": "FEM", "finercam": "FinerCAM",
    "shapleycam": "ShapleyCAM", "ablationcam": "AblationCAM", "randomcam": "RandomCAM", "scorecam": "ScoreCAM",
}
# methods whose map pytorch-grad-cam defines only up to sign (an SVD's singular vector)
SIGNLESS = ("eigencam", "eigengradcam")


def nchw(x_nhwc: F32) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x_nhwc.transpose(2, 0, 1)))[None]


def target(class_index: int, score: str) -> Any:
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget, ClassifierOutputTarget

    return ClassifierOutputTarget(class_index) if score == "logit" else ClassifierOutputSoftmaxTarget(class_index)


def _raw_per_layer(cam: Any, layer: nn.Module, feature_size: tuple[int, int] | None) -> None:
    """Make a BaseCAM return get_cam_image's map (1, h, w) before ReLU and scaling (feature_size None), or, for
    aug_smooth, its scaled map at the feature map's own size (the device's resolution)."""
    from pytorch_grad_cam.utils.image import scale_cam_image

    def per_layer(input_tensor: torch.Tensor, targets: list[Any], eigen_smooth: bool) -> list[Any]:
        store = cam.activations_and_grads
        activations = [a if not cam.detach else a.cpu().data.numpy() for a in store.activations]
        grads = [g if not cam.detach else g.cpu().data.numpy() for g in store.gradients]
        image = cam.get_cam_image(input_tensor, layer, targets, activations[0], grads[0] if grads else None,
                                  eigen_smooth)
        if feature_size is None:
            return [np.asarray(image, np.float32)]
        return [scale_cam_image(np.maximum(image, 0), feature_size)[:, None, :]]

    cam.compute_cam_per_layer = per_layer
    if feature_size is None:
        cam.aggregate_multi_layers = lambda maps: maps[0]


def grad_cam_family_raw(model: nn.Module, layer: nn.Module, x_nhwc: F32, class_index: int, method: str,
                        score: str = "logit", *, eigen_smooth: bool = False) -> F32:
    """pytorch-grad-cam's raw map (h, w) of `method` for one class and score ('logit' or 'probability')."""
    import pytorch_grad_cam

    extra = {"ablation_layer": _ablation_layer()} if method == "ablationcam" else {}
    cam = getattr(pytorch_grad_cam, CLASSES[method])(model=model, target_layers=[layer], **extra)
    base = getattr(cam, "base_cam", cam)  # FinerCAM wraps a GradCAM
    _raw_per_layer(base, layer, None)
    copy_after = layer.register_forward_hook(lambda _m, _i, out: out.clone())
    upsampling = nn.UpsamplingBilinear2d
    nn.UpsamplingBilinear2d = _UpsamplingFloat64  # type: ignore[misc]  # ScoreCAM reads it at call time
    try:
        x = nchw(x_nhwc)
        if method == "finercam":  # its own target: the class against the classes nearest it
            raw = cam(x, targets=None, target_idx=class_index, eigen_smooth=eigen_smooth)
        else:
            raw = cam(x, targets=[target(class_index, score)], eigen_smooth=eigen_smooth)
    finally:
        nn.UpsamplingBilinear2d = upsampling  # type: ignore[misc]
        copy_after.remove()
        _release(base.activations_and_grads)
    return np.asarray(raw[0], np.float32)


# the modules whose get_cam_image calls get_2d_projection for eigen_smooth (by the name each imported)
_EIGEN_SMOOTH_MODULES = ("base_cam", "hirescam", "layer_cam", "grad_cam_elementwise")


@contextlib.contextmanager
def signed_projection() -> Iterator[None]:
    """pytorch-grad-cam's eigen_smooth with each projection's sign fixed: positively correlated with the channel sum
    of the weighted activations it projects."""
    from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection

    def signed(batch: NDArray[Any]) -> F32:
        projections = get_2d_projection(batch)  # (n, h, w) float32
        sums = np.nan_to_num(batch.astype(np.float64)).sum(axis=1)  # (n, h, w)
        for projection, total in zip(projections, sums, strict=True):
            if float((projection.astype(np.float64) * (total - total.mean())).sum()) < 0:
                projection *= -1
        return projections

    modules = [importlib.import_module(f"pytorch_grad_cam.{name}") for name in _EIGEN_SMOOTH_MODULES]
    for module in modules:
        setattr(module, "get_2d_projection", signed)  # noqa: B010  # a module attribute, patched for this block
    try:
        yield
    finally:
        for module in modules:
            setattr(module, "get_2d_projection", get_2d_projection)  # noqa: B010


class _UpsamplingFloat64(nn.UpsamplingBilinear2d):
    """torch's UpsamplingBilinear2d (corners aligned) computed in float64, returned in float32."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.double()).float()


def _ablation_layer() -> Any:
    from pytorch_grad_cam.ablation_layer import AblationLayer

    class AblationLayerOnce(AblationLayer):  # type: ignore[misc]
        """pytorch-grad-cam's AblationLayer with the layer's minimum read before any channel is ablated."""

        def __call__(self, x: torch.Tensor) -> torch.Tensor:
            output = self.activations
            lowest = torch.min(output)
            value = 0 if lowest == 0 else lowest - 1e7
            for i in range(output.size(0)):
                output[i, self.indices[i], :] = value
            return output

    return AblationLayerOnce()


def _release(store: Any) -> None:
    """pytorch-grad-cam's ActivationsAndGradients.release() without its in-place detach (fails on views)."""
    store.activations.clear()
    store.gradients.clear()
    for handle in store.handles:
        handle.remove()
    store.handles.clear()


def aug_smooth_map(model: nn.Module, layer: nn.Module, x_nhwc: F32, class_index: int, method: str,
                   feature_size: tuple[int, int], score: str = "logit", *, eigen_smooth: bool = False) -> F32:
    """pytorch-grad-cam's aug_smooth=True output (h, w): the mean over its six augmentations (horizontal flip x
    multiplier 0.9, 1, 1.1 of the model input) of each augmented input's ReLU'd, min-max scaled map, flipped back,
    at the feature map's size (its scale_cam_image given that size instead of the input's: the device's resolution).
    The class is the given one for every augmentation (with targets=None each copy would explain its own top class)."""
    import pytorch_grad_cam

    extra = {"ablation_layer": _ablation_layer()} if method == "ablationcam" else {}
    cam = getattr(pytorch_grad_cam, CLASSES[method])(model=model, target_layers=[layer], **extra)
    _raw_per_layer(cam, layer, feature_size)
    copy_after = layer.register_forward_hook(lambda _m, _i, out: out.clone())
    try:
        out = cam(nchw(x_nhwc), targets=[target(class_index, score)], aug_smooth=True, eigen_smooth=eigen_smooth)
    finally:
        copy_after.remove()
        _release(cam.activations_and_grads)
    return np.asarray(out[0], np.float32)


class _Replay:
    """Stands in for torch-cam's noise distribution: hands out the given NCHW arrays in turn, so that torch-cam and
    the device draw the same noise (torch's and NumPy's generators differ)."""

    def __init__(self, noise: list[F32]) -> None:
        self.noise = list(noise)

    def sample(self, size: torch.Size) -> torch.Tensor:
        drawn = torch.from_numpy(np.ascontiguousarray(self.noise.pop(0)))
        assert tuple(drawn.shape) == tuple(size), (drawn.shape, size)
        return drawn


TORCHCAM_CLASSES = {"sscam": "SSCAM", "iscam": "ISCAM", "smoothgradcampp": "SmoothGradCAMpp"}


def torchcam_raw(model: nn.Module, layer: nn.Module, x_nhwc: F32, class_index: int, method: str,
                 noise: list[F32] | None = None, samples: int | None = None) -> F32:
    """torch-cam's map (h, w) of `method` for one class's logit, before its ReLU: its own weights times the input's
    activations. `noise`: the NCHW noise arrays its distribution would draw, in order; `samples`: its num_samples
    (None: its default).

    Smooth Grad-CAM++ in torch-cam weights the activations its hook kept last, the last noisy copy's; the map here
    weights the input's own activations (torch-cam's docstring's definition, and the device's)."""
    from torchcam import methods

    kept: list[torch.Tensor] = []
    keep = layer.register_forward_hook(lambda _m, _i, out: kept.append(out.detach().clone()))
    extra = {} if samples is None else {"num_samples": samples}
    cam = getattr(methods, TORCHCAM_CLASSES[method])(model, target_layer=layer, input_shape=x_nhwc.shape[::-1],
                                                     **extra)
    try:
        if noise is not None:
            cam._distrib = _Replay(noise)
        x = nchw(x_nhwc)
        if method == "smoothgradcampp":
            scores = model(x)
        else:
            with torch.no_grad():
                scores = model(x)
        weights = cam._get_weights(class_index, scores)[0][0]  # (k,)
    finally:
        keep.remove()
        cam.remove_hooks()
    with torch.no_grad():
        return torch.nansum(weights[:, None, None] * kept[0][0], dim=0).numpy().astype(np.float32)
