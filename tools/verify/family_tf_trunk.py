"""The trunk-pass members of the CAM family in TensorFlow: the Keras model itself run on the masked or noisy copies of
the input, as pytorch-grad-cam's ScoreCAM and torch-cam's SSCAM, ISCAM and SmoothGradCAMpp define them; and
`reference_map`, which picks a family method's TensorFlow reference (tools/verify/family_tf.py for the others).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tools.verify import family, family_tf
from tools.verify.family_tf import score_of

BATCH = 32  # masked inputs per model call, as both libraries' batch


def _scores(ref: Any, inputs: Any, class_index: int, score: str) -> np.ndarray:
    """The model's score (n,) float64 of the class for inputs (n, H, W, c), in batches."""
    out = []
    for i in range(0, int(inputs.shape[0]), BATCH):
        _, logits, probabilities = ref.forward(inputs[i : i + BATCH])
        out.append(score_of(logits, probabilities, class_index, score).numpy())
    return np.concatenate(out).astype(np.float64)


def _minmax(maps: Any) -> Any:
    """Each channel of (n, h, w, k) scaled to [0, 1]: (m - min) / (max - min + 1e-8)."""
    import tensorflow as tf

    low = tf.reduce_min(maps, axis=(1, 2), keepdims=True)
    return (maps - low) / (tf.reduce_max(maps, axis=(1, 2), keepdims=True) - low + 1e-8)


def _weighted(A: Any, weights: np.ndarray) -> Any:
    import tensorflow as tf

    return tf.reduce_sum(tf.cast(A, tf.float64) * weights, axis=-1)


def _softmax(values: np.ndarray) -> np.ndarray:
    e = np.exp(values - values.max())
    return np.asarray(e / e.sum())


def scorecam(ref: Any, x: Any, A: Any, class_index: int, score: str) -> Any:
    """Score-CAM (Wang et al., CVPR-W 2020, eq. 5-7), as pytorch-grad-cam's: each channel upsampled to the input
    (bilinear, corners aligned), min-max scaled, masks the input; the weights are the softmax of the masked scores."""
    import tensorflow as tf

    size = (int(x.shape[0]), int(x.shape[1]))
    up = tf.compat.v1.image.resize_bilinear(tf.transpose(A, (2, 0, 1))[..., None], size, align_corners=True)
    masks = _minmax(up)  # (k, H, W, 1)
    scores = _scores(ref, masks * x[None], class_index, score)
    return _weighted(A, _softmax(scores))


def smoothed_scorecam(ref: Any, x: Any, A: Any, class_index: int, score: str, method: str, seed: int,
                      samples: int) -> Any:
    """torch-cam's SS-CAM (arXiv 2006.14255, eq. 3: noise on the masks) and IS-CAM (arXiv 2010.03023, eq. 5: the
    masked input scaled by the running sum of i/N): masks min-maxed at the feature map's size, upsampled (bilinear,
    half-pixel centres as torch's align_corners=False), weights the softmax of the mean score differences."""
    import tensorflow as tf

    H, W = int(x.shape[0]), int(x.shape[1])
    masks = tf.image.resize(_minmax(A[None]), (H, W), method="bilinear")[0]  # (H, W, k)
    baseline = float(_scores(ref, x[None], class_index, score)[0])
    draws = family.noise(method, seed, tuple(masks.shape), samples) if method == "sscam" else []
    total = np.zeros(A.shape[-1], np.float64)
    coefficient = 0.0
    for i in range(samples):
        coefficient += (i + 1) / samples
        sample = masks + draws[i] if method == "sscam" else masks
        scale = 1.0 if method == "sscam" else coefficient
        inputs = scale * (tf.transpose(sample, (2, 0, 1))[..., None] * x[None])  # (k, H, W, c)
        total += _scores(ref, inputs, class_index, score) - baseline
    return _weighted(A, _softmax(total / samples))


def smoothgradcampp(ref: Any, x: Any, A: Any, class_index: int, score: str, seed: int, samples: int) -> Any:
    """torch-cam's Smooth Grad-CAM++ (arXiv 1908.01224, eq. 7-9): tape.gradient at `samples` noisy copies of the input
    (the device's noise), alpha = mean g^2 / (2 mean g^2 + sum_ab mean g^3_ab A_ab + 1e-8), w = sum alpha relu(g_last),
    on the input's own A."""
    import tensorflow as tf

    g2 = g3 = g = tf.zeros(A.shape, tf.float64)
    for noise in family.noise("smoothgradcampp", seed, tuple(x.shape), samples):
        with tf.GradientTape() as tape:
            An, logits, probabilities = ref.forward((x + noise)[None])
            value = score_of(logits, probabilities, class_index, score)
        g = tf.cast(tape.gradient(value, An)[0], tf.float64)
        g2, g3 = g2 + g * g, g3 + g * g * g
    g2, g3 = g2 / samples, g3 / samples
    A64 = tf.cast(A, tf.float64)
    alpha = g2 / (2.0 * g2 + tf.reduce_sum(g3 * A64, axis=(0, 1)) + 1e-8)
    return _weighted(A, tf.reduce_sum(alpha * tf.nn.relu(g), axis=(0, 1)).numpy())


def reference_map(ref: Any, x: Any, A: Any, g: Any, class_index: int, score: str, method: str, seed: int,
                  samples: int) -> tuple[np.ndarray, float | None]:
    """A family method's TensorFlow map (h, w) float32 for one input, and the size its rounding scales with where that
    is not the map's own (None)."""
    import tensorflow as tf

    x, A, g = tf.constant(x), tf.constant(A), tf.constant(g)
    scale = None
    if method == "randomcam":
        out, scale = family_tf.randomcam(A, seed)
    elif method in ("fem", "kpcacam"):
        out = getattr(family_tf, method)(A)
    elif method in ("gradcamelementwise", "eigengradcam"):
        out = getattr(family_tf, method)(A, g)
    elif method == "finercam":
        out = family_tf.finercam(ref, A, class_index)
    elif method in ("shapleycam", "ablationcam"):
        out = getattr(family_tf, method)(ref, A, class_index, score)
    elif method == "scorecam":
        out = scorecam(ref, x, A, class_index, score)
    elif method in ("sscam", "iscam"):
        out = smoothed_scorecam(ref, x, A, class_index, score, method, seed, samples)
    else:
        out = smoothgradcampp(ref, x, A, class_index, score, seed, samples)
    return np.asarray(out, np.float32), scale
