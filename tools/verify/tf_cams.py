"""The CAM family written with TensorFlow ops from the papers, on GradientTape's activations and gradient: the
references that edge/explain/cam's NumPy methods must equal. A (h, w, k) and grads = dScore/dA (h, w, k), both tf
tensors.
"""

from __future__ import annotations

from typing import Any


def _safe(x: Any) -> Any:
    import tensorflow as tf

    return tf.where(tf.not_equal(x, 0.0), x, tf.ones_like(x))


def gradcam(A: Any, g: Any) -> Any:  # Selvaraju et al. 1610.02391 eq. 1-2
    import tensorflow as tf

    return tf.reduce_sum(A * tf.reduce_mean(g, axis=(0, 1)), axis=-1)


def gradcampp(A: Any, g: Any) -> Any:  # Chattopadhyay et al. 1710.11063 eq. 19, alphas normalised as tf-keras-vis does
    import tensorflow as tf

    A, g = tf.cast(A, tf.float64), tf.cast(g, tf.float64)  # as edge does: the alphas' denominator can near 0
    g2, g3 = g**2, g**3
    alpha = g2 / _safe(2.0 * g2 + tf.reduce_sum(A, axis=(0, 1)) * g3)
    alpha = alpha / _safe(tf.reduce_sum(alpha, axis=(0, 1)))
    weights = tf.reduce_sum(alpha * tf.nn.relu(g), axis=(0, 1))
    return tf.cast(tf.reduce_sum(A * weights, axis=-1), tf.float32)


def xgradcam(A: Any, g: Any) -> Any:  # Fu et al. 2008.02312 eq. 13
    import tensorflow as tf

    weights = tf.reduce_sum(A * g, axis=(0, 1)) / _safe(tf.reduce_sum(A, axis=(0, 1)))
    return tf.reduce_sum(A * weights, axis=-1)


def layercam(A: Any, g: Any) -> Any:  # Jiang et al. 2021 eq. 5-6
    import tensorflow as tf

    return tf.reduce_sum(tf.nn.relu(g) * A, axis=-1)


def hirescam(A: Any, g: Any) -> Any:  # Draelos & Carin 2011.08891 eq. 4
    import tensorflow as tf

    return tf.reduce_sum(g * A, axis=-1)


def eigencam(A: Any, g: Any) -> Any:  # Muhammad & Yeasin 2008.00299: first principal component of centred A
    import tensorflow as tf

    h, w, k = A.shape
    X = tf.reshape(tf.cast(A, tf.float64), (h * w, k))
    X = X - tf.reduce_mean(X, axis=0)
    _, _, v = tf.linalg.svd(X)
    projection = tf.linalg.matvec(X, v[:, 0])
    activity = tf.reshape(tf.reduce_sum(tf.cast(A, tf.float64), axis=-1), (-1,))
    sign = tf.constant(-1.0 if float(tf.reduce_sum(projection * (activity - tf.reduce_mean(activity)))) < 0 else 1.0,
                       tf.float64)
    return tf.cast(tf.reshape(sign * projection, (h, w)), tf.float32)


GRADIENT_METHODS = {"gradcam": gradcam, "gradcampp": gradcampp, "xgradcam": xgradcam, "layercam": layercam,
                    "hirescam": hirescam, "eigencam": eigencam}


def cam(A: Any, class_kernel: Any) -> Any:  # Zhou et al. 1512.04150 eq. 2: sum_k w_k^c A^k for GAP -> Dense
    import tensorflow as tf

    return tf.reduce_sum(A * class_kernel, axis=-1)
