"""What tools.verify shares, on both sides of its subprocess boundary, to check the CAM family beyond the first seven
methods: which reference each method has per framework, which scores it defines, and the seeded randomness that the
device and the reference draw alike (no TensorFlow or torch here).

Random CAM and the noise methods are checked with the same random numbers on both sides: image i's device method is
made with seed i (edge/explain/cam's own generators: RandomCAM's legacy RandomState, SS-CAM's and Smooth
Grad-CAM++'s default_rng), and the reference draws from the same seed in the same order. IS-CAM has no randomness.
"""

from __future__ import annotations

import numpy as np

from edge.explain.cam import METHODS, TRUNK_PASS_METHODS, CamMethod
from edge.explain.cam.randomcam import RandomCAM
from edge.explain.cam.smoothgradcampp import SmoothGradCAMpp
from edge.explain.cam.smoothscore import ISCAM, SSCAM
from edge.explain.head_ops import F32

# Checked from the tape's (autograd's) own activations and gradient since before the family: tools/verify/tf_cams.py
FIRST = ("gradcam", "gradcampp", "xgradcam", "layercam", "hirescam", "eigencam", "cam")
FAMILY = tuple(name for name in METHODS if name not in FIRST)
TRUNK_PASS = TRUNK_PASS_METHODS
SAMPLED = ("sscam", "iscam", "smoothgradcampp")  # --samples sets their samples on both sides
NOISE_STD = {"sscam": 2.0, "smoothgradcampp": 0.3}  # the device's defaults (SSCAM, SmoothGradCAMpp), torch-cam's too
# torch-cam scores a class by the model's output (the logit): its methods have no probability-score reference
LOGIT_ONLY_TORCH = ("sscam", "iscam", "smoothgradcampp")
# Rounding the method amplifies beyond the head's sums (the judged tolerances are multiplied by these): differences
# of nearly equal scores (Ablation-CAM: TensorFlow's float32 head gave 6.7e-5 of the map on the fruit CNN), an
# eigenproblem (KPCA, Eigen-Grad), the alphas' quotients (Smooth Grad-CAM++), a second derivative (Shapley-CAM)
AMPLIFY = {"ablationcam": 10, "kpcacam": 10, "eigengradcam": 10, "shapleycam": 10, "smoothgradcampp": 10}

PYTORCH_REFERENCES = {
    "gradcamelementwise": "pytorch-grad-cam GradCAMElementWise", "eigengradcam": "pytorch-grad-cam EigenGradCAM "
    "(up to sign: oriented like sum_k g^k A^k)", "kpcacam": "pytorch-grad-cam KPCA_CAM", "fem": "pytorch-grad-cam FEM",
    "finercam": "pytorch-grad-cam FinerCAM",
    "shapleycam": "pytorch-grad-cam ShapleyCAM (nn.Hardsigmoid as relu6(x + 3) / 6, which torch differentiates twice)",
    "ablationcam": "pytorch-grad-cam AblationCAM (its layer's minimum read once)",
    "randomcam": "pytorch-grad-cam RandomCAM after np.random.seed(i) for image i, the device's weights drawn from "
                 "seed i: the same random numbers, the map checked exactly (not their distribution)",
    "scorecam": "pytorch-grad-cam ScoreCAM (masks upsampled in float64)",
    "sscam": "torch-cam SSCAM given the device's noise for image i (seed i: the map checked exactly, not the noise's "
             "distribution), logit score only",
    "iscam": "torch-cam ISCAM, logit score only",
    "smoothgradcampp": "torch-cam SmoothGradCAMpp given the device's noise for image i (seed i: the map checked "
                       "exactly, not the noise's distribution), on the input's own activations, logit score only",
}
TF_REFERENCES = {
    "randomcam": "TensorFlow ops, the weights drawn from seed i as the device's for image i: the same random "
                 "numbers, the map checked exactly (not their distribution)",
    "sscam": "TensorFlow ops and the Keras model on the masked inputs, with the device's noise for image i (seed i: "
             "the map checked exactly, not the noise's distribution)",
    "iscam": "TensorFlow ops and the Keras model on the masked inputs",
    "scorecam": "TensorFlow ops and the Keras model on the masked inputs",
    "smoothgradcampp": "tape.gradient on the Keras model at the device's noisy inputs for image i (seed i: the map "
                       "checked exactly, not the noise's distribution)",
    "ablationcam": "the Keras layers after the target on the ablated activations",
    "shapleycam": "tape.gradient of tape.gradient on the Keras layers after the target (Hessian-vector product)",
    "finercam": "tape.gradient of Finer-CAM's score through the Keras layers after the target",
}


def reference_text(method: str, framework: str) -> str:
    """What the method's map was compared with, in a few words, for the report."""
    if method in FIRST:
        return "tape.gradient (tools/verify/tf_cams.py)" if framework == "TensorFlow" else "torch autograd"
    if framework == "TensorFlow":
        return TF_REFERENCES.get(method, "TensorFlow ops on tape.gradient's activations and gradient")
    return PYTORCH_REFERENCES[method]


def scores_checked(method: str, framework: str, scores: tuple[str, ...]) -> tuple[str, ...]:
    """The scores the method's reference defines (torch-cam: the logit only)."""
    if framework != "TensorFlow" and method in LOGIT_ONLY_TORCH:
        return ("logit",)
    return scores


def noise(method: str, seed: int, shape: tuple[int, ...], samples: int) -> list[F32]:
    """The noise the device's `method` made with `seed` draws, in order: `samples` arrays of `shape` (the device's
    NHWC: the masks (H, W, k) for SS-CAM, the input (H, W, c) for Smooth Grad-CAM++)."""
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(shape) * NOISE_STD[method]).astype(np.float32) for _ in range(samples)]


def random_weights(seed: int, k: int) -> np.ndarray:
    """(k,) float64: RandomCAM's weights drawn with `seed` (NumPy's legacy generator, as pytorch-grad-cam's)."""
    return np.random.RandomState(seed).uniform(-1, 1, size=(1, k))[0]


def device_method(name: str, seed: int, samples: int | None) -> CamMethod:
    """The device's method for image `seed`: seeded with it where it draws random numbers, with `samples` where it
    samples (None: its default)."""
    extra = {} if samples is None else {"samples": samples}
    if name == "randomcam":
        return RandomCAM(seed)
    if name == "sscam":
        return SSCAM(seed=seed, **extra)
    if name == "iscam":
        return ISCAM(**extra)
    if name == "smoothgradcampp":
        return SmoothGradCAMpp(seed=seed, **extra)
    return METHODS[name]


def samples_of(name: str, samples: int | None) -> int:
    """The samples the device's method takes (the given number, else its default)."""
    method = device_method(name, 0, samples)
    return int(getattr(method, "samples"))  # noqa: B009 (only the sampled methods have it)
