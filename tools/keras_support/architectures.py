"""Keras model builders shared by training, tests and benchmarks (TensorFlow side only)."""

from __future__ import annotations

from typing import Any

import keras


def fruit_cnn(
    num_classes: int = 3,
    image_size: int = 100,
    *,
    seed: int | None = None,
    name: str = "fruit_cnn",
) -> Any:
    """The tutorials' fruit CNN: 4 x (Conv2D 3x3 relu -> BatchNorm -> MaxPool 2x2), Flatten, Dense 128, Dense softmax.

    Input (image_size, image_size, 3) float32 in [0, 1]; with 100x100 the last BatchNorm gives (8, 8, 128) and the last
    MaxPooling2D (4, 4, 128).
    """
    init = keras.initializers.GlorotUniform(seed=seed)
    layers: list[Any] = [keras.Input((image_size, image_size, 3), name="image")]
    for i, filters in enumerate((32, 32, 64, 128), start=1):
        layers += [
            keras.layers.Conv2D(filters, 3, activation="relu", kernel_initializer=init, name=f"conv{i}"),
            keras.layers.BatchNormalization(name=f"bn{i}"),
            keras.layers.MaxPooling2D(2, name=f"pool{i}"),
        ]
    layers += [
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dense(128, activation="relu", kernel_initializer=init, name="dense"),
        keras.layers.Dense(num_classes, activation="softmax", kernel_initializer=init, name="predictions"),
    ]
    return keras.Sequential(layers, name=name)


def fruit_cnn_gap(
    num_classes: int = 3,
    image_size: int = 100,
    *,
    seed: int | None = None,
    name: str = "fruit_cnn_gap",
) -> Any:
    """The fruit CNN's trunk with a CAM head, built for heatmaps that sit where the evidence is.

    The four Conv/BN blocks use 'same' padding and only the first three pool, so with 100x100 input the explained map
    is (12, 12, 128) and cell j's receptive field is centred on pixel 8j + 3.5: within 4 px of where a plain resize of
    the map onto the frame draws it (the 'valid' tutorial CNN's cells are off by up to 19 px at the edges). Then
    GlobalAveragePooling2D -> Dense softmax, for which CAM is defined and equals Grad-CAM up to scale.
    """
    init = keras.initializers.GlorotUniform(seed=seed)
    layers: list[Any] = [keras.Input((image_size, image_size, 3), name="image")]
    for i, filters in enumerate((32, 32, 64, 128), start=1):
        layers += [
            keras.layers.Conv2D(filters, 3, padding="same", activation="relu", kernel_initializer=init,
                                name=f"conv{i}"),
            keras.layers.BatchNormalization(name=f"bn{i}"),
        ]
        if i < 4:
            layers.append(keras.layers.MaxPooling2D(2, name=f"pool{i}"))
    layers += [
        keras.layers.GlobalAveragePooling2D(name="gap"),
        keras.layers.Dense(num_classes, activation="softmax", kernel_initializer=init, name="predictions"),
    ]
    return keras.Sequential(layers, name=name)


def mobilenetv2_gap(
    num_classes: int = 3,
    image_size: int = 96,
    *,
    alpha: float = 0.35,
    seed: int | None = None,
    name: str = "mobilenetv2_gap",
) -> Any:
    """The CAM tutorial's head: MobileNetV2 trunk (no weights) -> GlobalAveragePooling2D -> Dense softmax.

    `seed`: keras.utils.set_random_seed(seed) first, since keras.applications takes no initializer seeds (its unseeded
    initializers draw theirs from Python's global random state); None leaves the global state as it is.
    """
    if seed is not None:
        keras.utils.set_random_seed(seed)
    base = keras.applications.MobileNetV2(
        input_shape=(image_size, image_size, 3), alpha=alpha, include_top=False, weights=None
    )
    x = keras.layers.GlobalAveragePooling2D(name="gap")(base.output)
    init = keras.initializers.GlorotUniform(seed=seed)
    out = keras.layers.Dense(num_classes, activation="softmax", kernel_initializer=init, name="predictions")(x)
    return keras.Model(base.input, out, name=name)
