"""The CAM family beyond the first seven methods written with TensorFlow ops from their papers and pytorch-grad-cam's
definitions, on the Keras model itself: the references that tools.verify holds the device's methods against for Keras
bundles. A (h, w, k) and g = dScore/dA (h, w, k) are tape.gradient's; the methods that rerun part of the model run the
Keras layers after the target (`ref.head`) or the whole model (`ref.forward`, tools/verify/family_tf_perturb.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tools.verify import family

ABLATION_VALUE = 1e7  # pytorch-grad-cam's AblationLayer: the ablated channel is min(A) - 1e7 unless min(A) == 0
ABLATION_BATCH = 32  # ablated copies of A per head call, as pytorch-grad-cam's batch


def score_of(logits: Any, probabilities: Any, class_index: int, score: str) -> Any:
    """(n,) the class's logit or probability."""
    return logits[:, class_index] if score == "logit" else probabilities[:, class_index]


def gradcamelementwise(A: Any, g: Any) -> Any:  # pytorch-grad-cam GradCAMElementWise: sum_k relu(g^k A^k)
    import tensorflow as tf

    return tf.reduce_sum(tf.nn.relu(g * A), axis=-1)


def first_component(X: Any, orient: Any) -> Any:
    """(h, w, k) -> (h, w): centred X on its first right singular vector, signed to correlate with `orient` (h, w)."""
    import tensorflow as tf

    h, w, k = X.shape
    M = tf.reshape(tf.cast(X, tf.float64), (h * w, k))
    M = M - tf.reduce_mean(M, axis=0)
    _, _, v = tf.linalg.svd(M)
    projection = tf.linalg.matvec(M, v[:, 0])
    signal = tf.reshape(tf.cast(orient, tf.float64), (-1,))
    sign = -1.0 if float(tf.reduce_sum(projection * (signal - tf.reduce_mean(signal)))) < 0 else 1.0
    return tf.reshape(sign * projection, (h, w))


def eigengradcam(A: Any, g: Any) -> Any:  # Eigen-CAM (arXiv 2008.00299) of g * A, oriented by sum_k g^k A^k
    import tensorflow as tf

    return first_component(g * A, tf.reduce_sum(g * A, axis=-1))


def kpcacam(A: Any) -> Any:
    """KPCA-CAM (arXiv 2410.00267): scikit-learn's KernelPCA(n_components=1, kernel='sigmoid') of the centred
    (h*w, k) activations, written out: K = tanh(X X^T / k + 1), double-centred, top eigenvector * sqrt(eigenvalue),
    signed as svd_flip signs it (its largest-magnitude entry positive)."""
    import tensorflow as tf

    h, w, k = A.shape
    X = tf.reshape(tf.cast(A, tf.float64), (h * w, k))
    X = X - tf.reduce_mean(X, axis=0)
    K = tf.tanh(tf.matmul(X, X, transpose_b=True) / k + 1.0)
    K = K - tf.reduce_mean(K, axis=0, keepdims=True) - tf.reduce_mean(K, axis=1, keepdims=True) + tf.reduce_mean(K)
    values, vectors = tf.linalg.eigh(K)
    value, vector = float(values[-1]), vectors[:, -1]
    if value <= 0.0:
        return tf.zeros((h, w), tf.float64)
    vector = vector * tf.sign(vector[int(tf.argmax(tf.abs(vector)))])
    return tf.reshape(vector * np.sqrt(value), (h, w))


def fem(A: Any, k_sigma: float = 2.0) -> Any:  # FEM (Fuad et al. 2020): share of positions above mean + 2 std
    import tensorflow as tf

    threshold = tf.reduce_mean(A, axis=(0, 1)) + k_sigma * tf.math.reduce_std(A, axis=(0, 1))
    weights = tf.reduce_mean(tf.cast(threshold < A, tf.float32), axis=(0, 1))
    return tf.reduce_sum(A * weights, axis=-1)


def finercam(ref: Any, A: Any, class_index: int, comparisons: int = 3, alpha: float = 1.0) -> Any:
    """Finer-CAM (arXiv 2501.11309, eq. 4), as pytorch-grad-cam's FinerWeightedTarget: Grad-CAM of
    sum_j p_j (z_c - alpha z_j) / (sum_j p_j + 1e-9) over the classes whose logits are nearest z_c."""
    import tensorflow as tf

    with tf.GradientTape() as tape:
        tape.watch(A)
        logits, _ = ref.head(A[None])
        z = logits[0]
        order = np.argsort(np.abs(z.numpy() - z.numpy()[class_index]))
        others = [int(j) for j in order[1 : 1 + min(comparisons, len(order) - 1)]]
        p = tf.nn.softmax(z)
        numerator = tf.add_n([p[j] * (z[class_index] - alpha * z[j]) for j in others])
        score = numerator / (tf.add_n([p[j] for j in others]) + 1e-9)
    g = tape.gradient(score, A)
    return tf.reduce_sum(A * tf.reduce_mean(g, axis=(0, 1)), axis=-1)


def shapleycam(ref: Any, A: Any, class_index: int, score: str) -> Any:
    """Shapley-CAM (arXiv 2501.06261, eq. 12), as pytorch-grad-cam's: w = mean_ij(g - 1/2 H A), H A the Hessian of
    the score w.r.t. A times A, by a tape of the tape's gradient."""
    import tensorflow as tf

    with tf.GradientTape() as outer:
        outer.watch(A)
        with tf.GradientTape() as inner:
            inner.watch(A)
            logits, probabilities = ref.head(A[None])
            value = score_of(logits, probabilities, class_index, score)
        g = inner.gradient(value, A)
    hv = outer.gradient(g, A, output_gradients=A)
    hv = tf.zeros_like(A) if hv is None else hv  # a head piecewise linear in A: no second derivative
    return tf.reduce_sum(A * tf.reduce_mean(g - 0.5 * hv, axis=(0, 1)), axis=-1)


def ablationcam(ref: Any, A: Any, class_index: int, score: str) -> Any:
    """Ablation-CAM (Desai & Ramaswamy, WACV 2020, eq. 3): w_k = (S - S_k) / S, S_k the score of the layers after
    the target with channel k replaced by pytorch-grad-cam's ablation value."""
    import tensorflow as tf

    k = A.shape[-1]
    lowest = float(tf.reduce_min(A))
    value = 0.0 if lowest == 0 else lowest - ABLATION_VALUE
    logits, probabilities = ref.head(A[None])
    original = float(score_of(logits, probabilities, class_index, score)[0])
    ablated = []
    for start in range(0, k, ABLATION_BATCH):
        channels = np.arange(start, min(start + ABLATION_BATCH, k))
        keep = tf.constant(np.arange(k)[None, :] != channels[:, None], tf.float32)[:, None, None, :]  # (n, 1, 1, k)
        batch = A[None] * keep + value * (1.0 - keep)
        logits, probabilities = ref.head(batch)
        ablated.append(score_of(logits, probabilities, class_index, score).numpy().astype(np.float64))
    weights = (original - np.concatenate(ablated)) / original
    return tf.reduce_sum(tf.cast(A, tf.float64) * weights, axis=-1)


def randomcam(A: Any, seed: int) -> tuple[Any, float]:
    """pytorch-grad-cam's RandomCAM with the device's seed: the map sum_k u_k A^k, and the size its rounding scales
    with (the largest sum of |u_k A^k|: random signs cancel, their rounding does not)."""
    import tensorflow as tf

    terms = tf.cast(A, tf.float64) * family.random_weights(seed, A.shape[-1])
    return tf.reduce_sum(terms, axis=-1), float(tf.reduce_max(tf.reduce_sum(tf.abs(terms), axis=-1)))
