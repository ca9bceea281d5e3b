"""Grad-CAM with tf.GradientTape on the original Keras model: the reference the device must equal.

This is the Keras example's make_gradcam_heatmap (grad model -> tape -> spatial mean of the gradient -> weighted sum),
kept before its ReLU and normalisation so that raw maps can be compared, for score = logit or probability.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tools.keras_support import keras_graph
from tools.verify import tf_cams


@dataclass
class Reference:
    probabilities: NDArray[np.float32]  # (C,)
    class_index: int
    cam_raw: NDArray[np.float32]  # (h, w)
    gradient: NDArray[np.float32]  # (h, w, k) dScore/dA
    activations: NDArray[np.float32]  # (h, w, k) A
    methods: dict[str, NDArray[np.float32]] = field(default_factory=dict)  # method -> raw map (h, w), tools.tf_cams


class GradCamReference:
    """A grad model built once per (model, target layer), run per input."""

    def __init__(self, model: Any, target_layer: str) -> None:
        import keras

        chain = keras_graph.chain_to_output(model, target_layer)
        last = chain.layers[-1]
        pre_output = keras_graph.input_of_output_layer(model)
        self._last_kind = type(last).__name__
        self._last = last
        self.head_layers = chain.layers
        self._activation = self._output_activation(last)
        self._model = keras.Model(model.inputs, [chain.target_tensor, pre_output, model.outputs[0]])
        # The original CAM is defined for GlobalAveragePooling2D -> Dense only: keep that Dense's kernel (k, C).
        kinds = [type(layer).__name__ for layer in chain.layers]
        self.cam_kernel = chain.layers[1].kernel if kinds == ["GlobalAveragePooling2D", "Dense"] else None

    @staticmethod
    def _output_activation(last: Any) -> str:
        import keras

        if type(last).__name__ == "Dense":
            name = keras.activations.serialize(last.activation)
            return name if name in ("softmax", "sigmoid") else "none"
        if type(last).__name__ == "Softmax":
            return "softmax"
        if type(last).__name__ == "Activation":
            name = keras.activations.serialize(last.activation)
            return name if name in ("softmax", "sigmoid") else "none"
        return "none"

    def __call__(self, x: NDArray[np.float32], score: str, target: int | None = None) -> Reference:
        import tensorflow as tf

        with tf.GradientTape() as tape:
            A, pre, out = self._model([x[None]], training=False)
            logits = self._logits(pre, out)
            probabilities = out if self._activation != "none" else tf.nn.softmax(logits)
            c = int(tf.argmax(probabilities[0])) if target is None else target
            value = logits[:, c] if score == "logit" else probabilities[:, c]
        grads = tape.gradient(value, A)  # (1, h, w, k)
        alpha = tf.reduce_mean(grads, axis=(0, 1, 2))  # (k,)
        cam_raw = tf.reduce_sum(A[0] * alpha, axis=-1)  # (h, w)
        methods = {name: fn(A[0], grads[0]).numpy().astype(np.float32)
                   for name, fn in tf_cams.GRADIENT_METHODS.items()}
        if self.cam_kernel is not None:
            methods["cam"] = tf_cams.cam(A[0], self.cam_kernel[:, c]).numpy().astype(np.float32)
        return Reference(
            probabilities=probabilities[0].numpy().astype(np.float32),
            class_index=c,
            cam_raw=cam_raw.numpy().astype(np.float32),
            gradient=grads[0].numpy().astype(np.float32),
            activations=A[0].numpy().astype(np.float32),
            methods=methods,
        )

    def head(self, A: Any) -> tuple[Any, Any]:
        """The Keras layers after the target on activations (n, h, w, k): logits and probabilities (n, C)."""
        pre = A
        for layer in self.head_layers[:-1]:
            pre = layer(pre, training=False)
        return self._outputs(pre, self.head_layers[-1](pre, training=False))

    def forward(self, x: Any) -> tuple[Any, Any, Any]:
        """The whole model on inputs (n, H, W, c): activations A (n, h, w, k), logits and probabilities (n, C)."""
        A, pre, out = self._model([x], training=False)
        return (A, *self._outputs(pre, out))

    def _outputs(self, pre: Any, out: Any) -> tuple[Any, Any]:
        import tensorflow as tf

        logits = self._logits(pre, out)
        return logits, out if self._activation != "none" else tf.nn.softmax(logits)

    def _logits(self, pre: Any, out: Any) -> Any:
        import tensorflow as tf

        if self._activation == "none":
            return out
        if self._last_kind == "Dense":  # the Dense's own pre-activation: x @ kernel + bias
            logits = tf.matmul(pre, self._last.kernel)
            return logits + self._last.bias if self._last.use_bias else logits
        return pre  # a separate Activation/Softmax layer: its input is the logits
