"""The Keras activations the exporter maps onto the device's (tools/export/keras/head_builder.py) compute the same
function and TensorFlow's own gradient, at the kinks included; the ones it does not map are refused by name."""

from __future__ import annotations

import numpy as np
import pytest

from edge.explain import activations
from tools.export.keras.head_builder import KERAS_ACTIVATIONS, HeadExportError, build_head

# kinks of relu, relu6 and hard_silu, points beside them, and values where sigmoid saturates
POINTS = np.array([-20.0, -6.0, -3.0001, -3.0, -2.9999, -1.5, -1e-6, 0.0, 1e-6, 0.7, 2.9999, 3.0, 3.0001, 5.9999,
                   6.0, 6.0001, 20.0], np.float32)


@pytest.mark.parametrize("keras_name", sorted(set(KERAS_ACTIVATIONS) - {"linear", "softmax"}))
def test_mapped_activation_equals_tensorflow_forward_and_gradient(keras_name: str) -> None:
    import keras
    import tensorflow as tf

    fn = keras.activations.get(keras_name)
    x = tf.constant(POINTS)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = fn(x)
    g = np.linspace(0.5, 1.5, POINTS.size).astype(np.float32)  # an upstream gradient that is not all ones
    expected_grad = tape.gradient(y, x, output_gradients=tf.constant(g)).numpy()
    name = KERAS_ACTIVATIONS[keras_name]
    ours = activations.forward(name, POINTS)
    np.testing.assert_allclose(ours, y.numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(activations.backward(name, POINTS, ours, g), expected_grad, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("keras_name", ["hard_sigmoid", "elu", "gelu"])
def test_unmapped_activation_is_refused_by_name(keras_name: str) -> None:
    """hard_sigmoid is clip(0.2 x + 0.5) in Keras 2 and relu6(x + 3) / 6 in Keras 3: not guessed."""
    import keras

    inputs = keras.Input((4, 4, 8))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    x = keras.layers.Dense(6, activation=keras_name, name="hidden")(x)
    model = keras.Model(inputs, keras.layers.Dense(3, name="out")(x))
    with pytest.raises(HeadExportError, match=f"activation '{keras_name}' of layer 'hidden' is not supported") as e:
        build_head(model.layers[1:], (4, 4, 8))
    assert "\n" not in str(e.value)
