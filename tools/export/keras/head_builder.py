"""Keras layers after the target layer -> the edge NumPy head, with everything frame-independent precomputed.

Conversion keeps each layer's exact arithmetic; the passes every front end shares (tools/export/head_passes.py) then
fold BatchNorm into the neighbouring Dense and precompute the spatial sums of a Flatten->Dense kernel.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edge.explain.head import Head
from edge.explain.head_ops import Activation, Affine, Dense, Op, Pool2D, Reduce
from tools.export.front_end import ExportError
from tools.export.head_passes import HeadShapeError, finish_head

SUPPORTED = (
    "MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D, Flatten, Dense (linear, relu, "
    "relu6, softmax, sigmoid, hard_silu, silu), Dropout, BatchNormalization, Activation / ReLU / Softmax"
)
_IDENTITY_LAYERS = {"Dropout", "SpatialDropout2D", "GaussianDropout", "GaussianNoise", "ActivityRegularization"}
# Keras activation names -> the device's (edge/explain/activations.py), where both compute the same function: Keras 3's
# hard_silu (alias hard_swish) is x * relu6(x + 3) / 6, MobileNetV3's and torch's Hardswish; silu (alias swish) is
# x * sigmoid(x). Not hard_sigmoid: Keras 2 defined it as clip(0.2 x + 0.5), Keras 3 as relu6(x + 3) / 6.
KERAS_ACTIVATIONS = {"linear": "linear", "relu": "relu", "relu6": "relu6", "softmax": "softmax", "sigmoid": "sigmoid",
                "hard_silu": "hardswish", "hard_swish": "hardswish", "silu": "silu", "swish": "silu"}


class HeadExportError(ExportError):
    """A layer after the target cannot be run by the NumPy head."""


def build_head(layers: list[Any], feature_shape: tuple[int, int, int]) -> Head:
    """The head for `layers` (the chain from the target's output to the model output), folded and precomputed."""
    ops: list[Op] = []
    shape: tuple[int, ...] = feature_shape
    for layer in layers:
        new_ops, shape = _convert(layer, shape)
        ops += new_ops
    try:
        return finish_head(ops, feature_shape)
    except HeadShapeError as e:
        raise HeadExportError(str(e)) from e


def _convert(layer: Any, shape: tuple[int, ...]) -> tuple[list[Op], tuple[int, ...]]:
    """One Keras layer -> edge ops, and the shape after it (without the batch axis)."""
    kind = type(layer).__name__
    config = layer.get_config()
    if config.get("data_format", "channels_last") != "channels_last":
        raise HeadExportError(f"layer {layer.name!r} ({kind}) uses {config['data_format']}; only channels_last")
    out_shape = tuple(int(v) for v in layer.output.shape[1:])
    if kind in _IDENTITY_LAYERS or kind == "InputLayer":
        return [], shape
    if kind in ("MaxPooling2D", "AveragePooling2D"):
        pool = tuple(config["pool_size"])
        strides = tuple(config["strides"] or pool)
        mode = "max" if kind == "MaxPooling2D" else "avg"
        return [Pool2D(mode, (pool[0], pool[1]), (strides[0], strides[1]), config["padding"])], out_shape
    if kind in ("GlobalAveragePooling2D", "GlobalMaxPooling2D"):
        return [Reduce("avg" if kind == "GlobalAveragePooling2D" else "max")], (shape[-1],)
    if kind == "Flatten":  # after a keepdims global pooling the map is already a vector
        return ([Reduce("flatten")] if len(shape) == 3 else []), (int(np.prod(shape)),)
    if kind == "Dense":
        if len(shape) != 1:
            raise HeadExportError(f"Dense layer {layer.name!r} is applied to a {len(shape) + 1}-D tensor; "
                                  "put Flatten or global pooling before it")
        kernel = np.asarray(layer.kernel.numpy(), np.float32)  # (n_in, n_out)
        bias = np.asarray(layer.bias.numpy(), np.float32) if layer.use_bias else np.zeros(kernel.shape[1], np.float32)
        return [Dense(kernel, bias), *_activation(layer, _activation_name(layer))], out_shape
    if kind == "BatchNormalization":
        return [_batchnorm(layer, shape)], shape
    if kind == "Activation":
        return _activation(layer, _activation_name(layer)), shape
    if kind == "ReLU":
        return _activation(layer, _relu_name(layer, config)), shape
    if kind == "Conv2D":
        raise HeadExportError(_conv_classifier_hint(layer, shape))
    if kind == "Softmax":
        axis = config.get("axis", -1)
        if axis not in (-1, len(shape)):
            raise HeadExportError(f"Softmax layer {layer.name!r} over axis {axis}: only the last axis is supported")
        return [Activation("softmax")], shape
    raise HeadExportError(
        f"layer {layer.name!r} ({kind}) after the target layer is not supported; supported: {SUPPORTED}"
    )


def _conv_classifier_hint(layer: Any, shape: tuple[int, ...]) -> str:
    """A convolution after the target, e.g. SqueezeNet's 1x1 Conv2D classifier: name it and say what would work."""
    config = layer.get_config()
    size = "x".join(str(v) for v in config["kernel_size"])
    return (f"layer {layer.name!r} (Conv2D {size}, {config['filters']} filters) after the target layer is not "
            "supported: the NumPy head has no convolutions; choose --target-layer "
            f"{layer.name!r} or a later 4-D layer (see --list-layers){conv_classifier_note(layer)}")


def conv_classifier_note(layer: Any) -> str:
    """What to say when a 1x1 Conv2D is the classifier: no target leaves a Dense layer in the head."""
    if tuple(layer.get_config()["kernel_size"]) != (1, 1):
        return ""
    return (f"; but {layer.name!r} is a SqueezeNet-style 1x1 Conv2D classifier, and the head must end in a Dense "
            "layer: give the model a GlobalAveragePooling2D -> Dense classifier (the same function when no "
            "activation lies between the 1x1 convolution and the pooling)")


def _activation_name(layer: Any) -> str:
    import keras

    name = keras.activations.serialize(layer.activation)
    if not isinstance(name, str):
        name = getattr(layer.activation, "__name__", repr(name))
    if name not in KERAS_ACTIVATIONS:
        raise HeadExportError(f"activation {name!r} of layer {layer.name!r} is not supported; "
                              f"supported: {', '.join(sorted(KERAS_ACTIVATIONS))}")
    return KERAS_ACTIVATIONS[name]


def _relu_name(layer: Any, config: dict[str, Any]) -> str:
    max_value = config.get("max_value")
    if config.get("negative_slope", 0.0) or config.get("threshold", 0.0):
        raise HeadExportError(f"ReLU layer {layer.name!r} with negative_slope/threshold is not supported")
    if max_value is None:
        return "relu"
    if float(max_value) == 6.0:
        return "relu6"
    raise HeadExportError(f"ReLU layer {layer.name!r} with max_value={max_value} is not supported (only 6)")


def _activation(layer: Any, name: str) -> list[Op]:
    return [] if name == "linear" else [Activation(name)]


def _batchnorm(layer: Any, shape: tuple[int, ...]) -> Affine:
    config = layer.get_config()
    axis = config["axis"]
    axis = axis[0] if isinstance(axis, list | tuple) else axis
    if axis not in (-1, len(shape)):
        raise HeadExportError(f"BatchNormalization {layer.name!r} over axis {axis}: only the last axis is supported")
    n = shape[-1]
    gamma = layer.gamma.numpy() if layer.scale else np.ones(n)
    beta = layer.beta.numpy() if layer.center else np.zeros(n)
    mean, var = layer.moving_mean.numpy(), layer.moving_variance.numpy()
    scale = gamma / np.sqrt(var + config["epsilon"])  # inference mode: y = (x - mean) * scale + beta
    return Affine(scale.astype(np.float32), (beta - mean * scale).astype(np.float32))


