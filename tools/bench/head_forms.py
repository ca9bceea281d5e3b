"""Keras builders of the bench's head forms (TensorFlow side; run in a subprocess by tools.bench.bundles).

Random weights, seeded: these models are for timing the NumPy head per head form, not for their answers.
"""

from __future__ import annotations

from typing import Any

from tools.keras_support import architectures


def flatten_cnn() -> Any:
    """The tutorials' CNN: Conv/BN/MaxPool x4 -> Flatten -> Dense 128 relu -> Dense 3 softmax (100x100 input)."""
    return architectures.fruit_cnn(3, 100, seed=0)


def flatten_bn_dropout_cnn() -> Any:
    """The same trunk, Flatten -> Dense 128 relu -> BatchNorm -> Dropout -> Dense 3 softmax."""
    import keras

    keras.utils.set_random_seed(0)  # the unseeded Dense and BatchNorm after the trunk draw from the global state
    base = architectures.fruit_cnn(3, 100, seed=0)
    x = base.get_layer("dense").output
    x = keras.layers.BatchNormalization(name="bn_dense")(x)
    x = keras.layers.Dropout(0.5, name="dropout")(x)
    out = keras.layers.Dense(3, activation="softmax", name="predictions2")(x)
    return keras.Model(base.inputs, out, name="flatten_bn_dropout_cnn")


def mobilenetv2_gap() -> Any:
    """The CAM tutorial's MobileNetV2-224 (alpha 1.0) -> GlobalAveragePooling2D -> Dense 3 softmax."""
    return architectures.mobilenetv2_gap(3, 224, alpha=1.0, seed=0)


def mobilenetv2_relu6() -> Any:
    """A MobileNet-style classifier: MobileNetV2-224 -> GAP -> Dense 128 -> ReLU6 -> Dense 3 softmax."""
    import keras

    keras.utils.set_random_seed(0)  # keras.applications' initializers draw their seeds from the global state
    base = keras.applications.MobileNetV2(input_shape=(224, 224, 3), alpha=1.0, include_top=False, weights=None)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(base.output)
    x = keras.layers.Dense(128, name="hidden")(x)
    x = keras.layers.ReLU(6.0, name="hidden_relu6")(x)
    out = keras.layers.Dense(3, activation="softmax", name="predictions")(x)
    return keras.Model(base.input, out, name="mobilenetv2_relu6")


def mobilenetv2_hardswish() -> Any:
    """The same with MobileNetV3's hidden activation: MobileNetV2-224 -> GAP -> Dense 128 -> hard_swish -> Dense 3
    softmax (Keras 3's hard_silu: x * relu6(x + 3) / 6)."""
    import keras

    keras.utils.set_random_seed(0)  # keras.applications' initializers draw their seeds from the global state
    base = keras.applications.MobileNetV2(input_shape=(224, 224, 3), alpha=1.0, include_top=False, weights=None)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(base.output)
    x = keras.layers.Dense(128, activation="hard_swish", name="hidden")(x)
    out = keras.layers.Dense(3, activation="softmax", name="predictions")(x)
    return keras.Model(base.input, out, name="mobilenetv2_hardswish")
