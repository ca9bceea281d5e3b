"""The framework's own Grad-CAM that tools.verify holds the bundle against, chosen by the model's format (the export's
front ends, tools/export/formats.py), with the tolerances that model allows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from edge.explain import bundle as bundle_format
from tools.export import formats
from tools.export.torch import model_spec
from tools.keras_support import model_io
from tools.verify import family, tolerance


class VerifyError(Exception):
    """Inputs to verify are missing or unusable."""


def reference_name(model_path: Path) -> str:
    """The framework whose Grad-CAM is the reference: PyTorch for MODULE:CALLABLE, .pt2 and .onnx, else TensorFlow."""
    return "TensorFlow" if formats.front_end_for(model_path).name == "keras" else "PyTorch"


def reference(model_path: Path, weights: Path | None, manifest: bundle_format.Manifest,
               user_tolerance: float) -> tuple[Any, tolerance.Tolerances]:
    """The framework's own Grad-CAM and the tolerances its model allows: tf.GradientTape for Keras models, torch
    autograd for PyTorch MODULE:CALLABLE and on a .pt2 program itself (tools/verify/pt2_reference.py),
    onnxruntime + torch autograd on onnx2torch's graph for .onnx (tools/verify/onnx_reference.py)."""
    kind = formats.front_end_for(model_path).name
    if kind == "onnx":
        return _onnx_reference(model_path, weights, manifest, user_tolerance)
    if kind == "pt2":
        return _pt2_reference(model_path, weights, manifest, user_tolerance)
    if kind == "keras":
        from tools.verify.tf_reference import GradCamReference

        model_spec.refuse_malformed(str(model_path))
        model = model_io.load_model(model_path, weights)
        tol = tolerance.derive(model, manifest.target_layer, manifest.head_dtype, user_tolerance)
        return GradCamReference(model, manifest.target_layer), tol
    _needs_logits("PyTorch", manifest)
    net = model_spec.load(str(model_path), weights)  # first: a one-line error where torch is not installed
    from tools.verify import torch_reference

    try:
        reference = torch_reference.TorchGradCamReference(net, manifest.target_layer)
    except ValueError as e:
        raise VerifyError(str(e)) from e
    return reference, torch_reference.tolerances(net, manifest.target_layer, manifest.head_dtype, user_tolerance)


def _onnx_reference(model_path: Path, weights: Path | None, manifest: bundle_format.Manifest,
                    user_tolerance: float) -> tuple[Any, tolerance.Tolerances]:
    if weights is not None:
        raise VerifyError("an .onnx model holds its weights: drop --weights")
    _needs_logits("ONNX", manifest)
    formats.require("onnx")  # first: a one-line error where onnx/torch are not installed
    try:
        from tools.verify.onnx_reference import OnnxGradCamReference
    except ImportError as e:
        raise VerifyError(f"verifying an ONNX bundle needs onnxruntime (requirements-torch.txt): {e}") from e
    reference = OnnxGradCamReference(model_path, manifest.target_layer, manifest.input_shape[:2])
    return reference, reference.tolerances(manifest.head_dtype, user_tolerance)


def _pt2_reference(model_path: Path, weights: Path | None, manifest: bundle_format.Manifest,
                   user_tolerance: float) -> tuple[Any, tolerance.Tolerances]:
    if weights is not None:
        raise VerifyError("a .pt2 program holds its weights: drop --weights")
    _needs_logits("PyTorch", manifest)
    formats.require("pt2")  # first: a one-line error where torch is not installed
    from tools.verify import pt2_reference

    return pt2_reference.reference(model_path, manifest, user_tolerance)


def _needs_logits(reference: str, manifest: bundle_format.Manifest) -> None:
    """The PyTorch-side references take the model's outputs as logits (the bundle's output activation 'none')."""
    if manifest.output_activation != "none":
        raise VerifyError(f"the {reference} reference takes the model's outputs as logits; this bundle's model ends "
                          f"in {manifest.output_activation}")


def is_pt2(model_path: Path) -> bool:
    return formats.front_end_for(model_path).name == "pt2"


def refuse_unchecked(model_path: Path, method: str) -> None:
    """A one-line error where the method's reference cannot run on the model: pytorch-grad-cam's AblationCAM ablates
    channels item by item of a batch, which a .pt2 program exported for one input cannot take."""
    if method == "ablationcam" and is_pt2(model_path):
        raise VerifyError("pytorch-grad-cam's AblationCAM runs batches, which a .pt2 program refuses (exported for one "
                          "input): verify ablationcam with the PyTorch MODULE:CALLABLE the program came from")


def add_family_maps(reference: Any, x: np.ndarray, refs: dict[str, list[Any]], method: str,
                    samples: int | None, one_by_one: bool = False) -> dict[str, np.ndarray]:
    """Each reference's map of a family method (tools/verify/family.py) put in its `methods`, image i with seed i;
    returns, per score, the size (N,) each image's rounding scales with (0 where it is the map's own).
    `one_by_one`: the PyTorch model takes one input at a time (a .pt2 program)."""
    n = family.samples_of(method, samples) if method in family.SAMPLED else 0
    scales: dict[str, np.ndarray] = {}
    for score, score_refs in refs.items():
        sizes = []
        for i, (xi, r) in enumerate(zip(x, tqdm(score_refs, desc=f"reference {method} ({score})", unit="img",
                                                 leave=False), strict=True)):
            if hasattr(r, "gradient"):  # TensorFlow's Reference: tape.gradient's A and g
                from tools.verify import family_tf_trunk

                cam, size = family_tf_trunk.reference_map(reference, xi, r.activations, r.gradient, r.class_index,
                                                          score, method, i, n)
            else:
                from tools.verify import family_torch

                cam, size = family_torch.reference_map(reference, xi, r.activations, r.class_index, score, method, i,
                                                       n, one_by_one)
            r.methods[method] = cam
            sizes.append(size or 0.0)
        scales[score] = np.array(sizes)
    return scales
