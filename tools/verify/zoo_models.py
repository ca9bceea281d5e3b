"""Small seeded Keras models for the head forms the fruit and MobileNet models do not have (issue 26): a sigmoid
output, SAME-padded max and average pooling after the target, global max pooling, a linear output, a Rescaling layer;
and a GAP head whose CAM maps are all negative.

The SAME poolings are sized so that TensorFlow pads an odd total (one more row and column at the bottom and right than
at the top and left): a padding split the wrong way round then moves every window and cannot agree by accident.
"""

from __future__ import annotations

from typing import Any


def _conv(filters: int, name: str, seed: int, activation: str = "relu") -> Any:
    import keras

    return keras.layers.Conv2D(filters, 3, activation=activation, name=name,
                               kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
                               bias_initializer=keras.initializers.RandomNormal(stddev=0.05, seed=seed + 1))


def _dense(units: int, name: str, seed: int, activation: str | None = None) -> Any:
    import keras

    return keras.layers.Dense(units, activation=activation, name=name,
                              kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
                              bias_initializer=keras.initializers.RandomNormal(stddev=0.1, seed=seed + 1))


def sigmoid_same_max() -> Any:
    """Multi-label: Rescaling inside the model (exported with preprocess none); target conv2 (19, 21, 16) ->
    MaxPooling2D 2x2 SAME (out (10, 11), padding 0 top / 1 bottom, 0 left / 1 right) -> Flatten -> Dense relu ->
    Dense sigmoid."""
    import keras

    return keras.Sequential([
        keras.Input((45, 49, 3)),
        keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="rescale"),
        _conv(8, "conv1", 21),  # (43, 47, 8)
        keras.layers.MaxPooling2D(2, name="pool1"),  # (21, 23, 8)
        _conv(16, "conv2", 23),  # (19, 21, 16): the target
        keras.layers.MaxPooling2D(2, padding="same", name="pool_same"),  # (10, 11, 16)
        keras.layers.Flatten(name="flatten"),
        _dense(32, "dense", 25, "relu"),
        _dense(4, "predictions", 27, "sigmoid"),
    ])


def same_avg_gmp() -> Any:
    """target conv2 (20, 22, 16) -> AveragePooling2D 3x3 stride 2 SAME (out (10, 11), padding 0/1 on both axes, edge
    windows averaged over their real inputs only) -> BatchNormalization -> GlobalMaxPooling2D -> Dense softmax."""
    import keras

    return keras.Sequential([
        keras.Input((46, 50, 3)),
        _conv(8, "conv1", 31),  # (44, 48, 8)
        keras.layers.MaxPooling2D(2, name="pool1"),  # (22, 24, 8)
        _conv(16, "conv2", 33),  # (20, 22, 16): the target
        keras.layers.AveragePooling2D(3, strides=2, padding="same", name="avg_same"),  # (10, 11, 16)
        keras.layers.BatchNormalization(name="bn_avg"),
        keras.layers.GlobalMaxPooling2D(name="gmp"),
        _dense(5, "predictions", 35, "softmax"),
    ])


def gmp_linear() -> Any:
    """GlobalMaxPooling2D right after the target (a ReLU map: zero channels tie everywhere), and a Dense without
    activation, whose outputs are the logits."""
    import keras

    return keras.Sequential([
        keras.Input((40, 40, 3)),
        _conv(8, "conv1", 41),  # (38, 38, 8)
        keras.layers.MaxPooling2D(2, name="pool1"),  # (19, 19, 8)
        _conv(16, "conv2", 43),  # (17, 17, 16): the target
        keras.layers.GlobalMaxPooling2D(name="gmp"),
        _dense(3, "logits", 45),
    ])


def gap_hardswish_silu() -> Any:
    """MobileNet-style hidden layers behind global average pooling: Dense hard_silu (Keras 3's name for hard_swish,
    MobileNetV3's classifier activation) -> Dense silu -> Dense softmax, so that the head's backward runs through
    both (the plan's generic path: neither is ReLU)."""
    import keras

    return keras.Sequential([
        keras.Input((40, 44, 3)),
        _conv(8, "conv1", 51),  # (38, 42, 8)
        keras.layers.MaxPooling2D(2, name="pool1"),  # (19, 21, 8)
        _conv(16, "conv2", 53),  # (17, 19, 16): the target
        keras.layers.GlobalAveragePooling2D(name="gap"),
        _dense(24, "hidden_hard_swish", 55, "hard_swish"),
        _dense(16, "hidden_silu", 57, "silu"),
        _dense(3, "predictions", 59, "softmax"),
    ])


def gap_negative() -> Any:
    """GlobalAveragePooling2D -> Dense softmax whose kernel is negative everywhere, over a ReLU target kept positive
    by its bias: every class's CAM and Grad-CAM map is negative in every cell, so that their normalised heatmaps are
    all zeros and only the raw maps can show that the two agree (an untrained model can be like this by chance)."""
    import keras

    return keras.Sequential([
        keras.Input((36, 40, 3)),
        _conv(8, "conv1", 61),  # (34, 38, 8)
        keras.layers.MaxPooling2D(2, name="pool1"),  # (17, 19, 8)
        keras.layers.Conv2D(16, 3, activation="relu", name="conv2",  # (15, 17, 16): the target
                            kernel_initializer=keras.initializers.GlorotUniform(seed=63),
                            bias_initializer=keras.initializers.Constant(0.5)),
        keras.layers.GlobalAveragePooling2D(name="gap"),
        keras.layers.Dense(3, activation="softmax", name="predictions",
                           kernel_initializer=keras.initializers.RandomUniform(-1.0, -0.1, seed=65),
                           bias_initializer=keras.initializers.RandomNormal(stddev=0.5, seed=66)),
    ])
