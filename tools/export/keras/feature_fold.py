"""Fold BatchNorms that follow a ReLU convolution into it, so the TFLite feature model does less per frame.

The fruit tutorials' block is Conv2D(relu) -> BatchNormalization -> MaxPooling2D. TFLite's converter folds a
BatchNorm into the convolution *before* it only when nothing lies between them; after a ReLU it stays a MUL and an ADD
over the whole feature map, which on a small CNN costs as much as a convolution (memory-bound, no arithmetic to hide
behind). With s = gamma / sqrt(var + eps) > 0 and o = beta - mean * s per channel:

    BN(relu(W x + b)) = relu(s W x + s b) + o              (relu is positively homogeneous)
    maxpool(z + o)    = maxpool(z) + o                      (a per-channel shift commutes with a max)

so the block becomes Conv2D(s W, s b, relu) -> MaxPooling2D -> + o: no MUL at all, and the ADD on the pooled map, a
quarter of the size. The two graphs agree to float rounding (checked on every export; the original is kept if not).
Only chains (each layer one input) are rewritten, and only BatchNorms with every s > 0.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from tools.keras_support import keras_graph

_LOGGER = logging.getLogger(__name__)
AGREEMENT = 1e-4  # max |folded - original| / max |original| on random inputs, or the original is kept


def _foldable(conv: Any, bn: Any) -> np.ndarray | None:
    """s (k,) if bn can be folded into conv (a ReLU Conv2D, channels-last, every s > 0), else None."""
    import keras

    if type(conv).__name__ != "Conv2D" or type(bn).__name__ != "BatchNormalization":
        return None
    if conv.activation is not keras.activations.relu or conv.data_format != "channels_last":
        return None
    if bn.axis not in (-1, 3, [-1], [3]):
        return None
    gamma = bn.gamma.numpy() if bn.gamma is not None else 1.0
    scale = np.asarray(gamma / np.sqrt(bn.moving_variance.numpy() + bn.epsilon), np.float64)  # (k,)
    return scale if bool(np.all(scale > 0)) else None


def _channel_bias_layer(offset: np.ndarray, name: str) -> Any:
    import keras

    class ChannelBias(keras.layers.Layer):  # type: ignore[misc]
        """x + offset per channel: a BatchNorm's shift, after the max-pool it commutes with."""

        def __init__(self, value: np.ndarray, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.value = np.asarray(value, np.float32)  # (k,)

        def build(self, input_shape: Any) -> None:
            self.offset = self.add_weight(name="offset", shape=self.value.shape, initializer="zeros",
                                          trainable=False)
            self.offset.assign(self.value)

        def call(self, x: Any) -> Any:
            return x + self.offset

    return ChannelBias(offset, name=name)


def _folded_conv(conv: Any, scale: np.ndarray) -> tuple[Any, list[np.ndarray]]:
    import keras

    config = conv.get_config() | {"use_bias": True, "name": f"{conv.name}_folded"}
    kernel = conv.kernel.numpy().astype(np.float64)  # (kh, kw, cin, k)
    bias = conv.bias.numpy().astype(np.float64) if conv.use_bias else np.zeros(kernel.shape[-1])
    folded = keras.layers.Conv2D.from_config(config)
    return folded, [(kernel * scale).astype(np.float32), (bias * scale).astype(np.float32)]


def fold_batchnorms(model_input: Any, target_tensor: Any) -> Any | None:
    """A Keras model input -> target with the BatchNorms after ReLU convolutions folded, or None if there were none
    to fold (or the graph is not a chain, or the folded model does not agree with the original)."""
    import keras

    layers = keras_graph.chain_from_input(target_tensor)
    if layers is None:
        return None
    x = inputs = keras.Input(tuple(model_input.shape[1:]), dtype=model_input.dtype)
    weights: list[tuple[Any, list[np.ndarray]]] = []
    folded, i = 0, 0
    while i < len(layers):
        layer = layers[i]
        scale = _foldable(layer, layers[i + 1]) if i + 1 < len(layers) else None
        if scale is None:
            x = layer(x)  # the same layer (and weights), called on the new graph
            i += 1
            continue
        bn = layers[i + 1]
        conv, conv_weights = _folded_conv(layer, scale)
        x = conv(x)
        weights.append((conv, conv_weights))
        beta = bn.beta.numpy() if bn.beta is not None else 0.0
        offset = beta - bn.moving_mean.numpy().astype(np.float64) * scale
        i += 2
        while i < len(layers) and type(layers[i]).__name__ == "MaxPooling2D":
            x = layers[i](x)  # the shift moves past every max-pool that follows
            i += 1
        x = _channel_bias_layer(offset, f"{bn.name}_offset")(x)
        folded += 1
    if not folded:
        return None
    model = keras.Model(inputs, x, name="features")
    for conv, conv_weights in weights:
        conv.set_weights(conv_weights)
    original = keras.Model(model_input, target_tensor)
    probe = np.random.default_rng(0).uniform(0, 1, (4, *model_input.shape[1:])).astype(np.float32)
    want = np.asarray(original(probe, training=False))
    got = np.asarray(model(probe, training=False))
    error = float(np.abs(got - want).max() / max(float(np.abs(want).max()), 1e-12))
    if got.shape != want.shape or not error <= AGREEMENT:
        _LOGGER.warning("folding BatchNorms changed the features by %.2g (relative): exporting them unfolded", error)
        return None
    _LOGGER.info("folded %d BatchNorm(s) into the convolution before them (features agree to %.1g)", folded, error)
    return model
