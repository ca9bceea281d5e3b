"""Keras layers after the target layer -> the edge NumPy head, with everything frame-independent precomputed.

Conversion keeps each layer's exact arithmetic; the optimisation passes then fold BatchNorm into the neighbouring
Dense, drop identities, precompute the spatial sums of a Flatten->Dense kernel and, for heads linear in A, the Grad-CAM
channel weights of every class.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edge.head import Head
from edge.head_ops import F32, Activation, Affine, Dense, Op, Pool2D, Reduce

SUPPORTED = (
    "MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D, Flatten, Dense (linear, relu, "
    "softmax, sigmoid), Dropout, BatchNormalization, Activation / ReLU / Softmax"
)
_IDENTITY_LAYERS = {"Dropout", "SpatialDropout2D", "GaussianDropout", "GaussianNoise", "ActivityRegularization"}
_ACTIVATIONS = {"linear", "relu", "relu6", "softmax", "sigmoid"}


class HeadExportError(Exception):
    """A layer after the target cannot be run by the NumPy head."""


def build_head(layers: list[Any], feature_shape: tuple[int, int, int]) -> Head:
    """The head for `layers` (the chain from the target's output to the model output), folded and precomputed."""
    ops: list[Op] = []
    shape: tuple[int, ...] = feature_shape
    for layer in layers:
        new_ops, shape = _convert(layer, shape)
        ops += new_ops
    output_activation = "none"
    last = ops[-1] if ops else None
    if isinstance(last, Activation) and last.name in ("softmax", "sigmoid"):
        output_activation = last.name
        ops.pop()
    if not any(isinstance(op, Reduce) for op in ops):
        raise HeadExportError("the head never reduces the feature map: put Flatten or global pooling after the target")
    if not isinstance(next((op for op in reversed(ops) if not isinstance(op, Affine)), None), Dense):
        raise HeadExportError("the head must end in a Dense layer (optionally followed by softmax or sigmoid)")
    ops = fold_affines(ops, feature_shape)
    _add_spatial_sums(ops, feature_shape)
    # No cam_weights: for a head linear in A they follow from its kernels, and edge.bundle.load_head derives them.
    return Head(ops, feature_shape, output_activation)


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
    if name not in _ACTIVATIONS:
        raise HeadExportError(f"activation {name!r} of layer {layer.name!r} is not supported; "
                              f"supported: {', '.join(sorted(_ACTIVATIONS))}")
    return str(name)


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


def fold_affines(ops: list[Op], feature_shape: tuple[int, int, int]) -> list[Op]:
    """Fold every Affine (inference BatchNorm) into the Dense it touches, where that is exact."""
    ops = list(ops)
    i = 0
    while i < len(ops):
        op = ops[i]
        if isinstance(op, Affine):
            folded = _fold_into_next_dense(ops, i, feature_shape) or _fold_into_previous_dense(ops, i)
            if folded:
                continue
        i += 1
    return ops


def _fold_into_previous_dense(ops: list[Op], i: int) -> bool:
    """Dense -> Affine: W' = W * s, b' = b * s + o."""
    prev = ops[i - 1] if i > 0 else None
    affine = ops[i]
    if not isinstance(prev, Dense) or not isinstance(affine, Affine):
        return False
    ops[i - 1] = Dense(prev.kernel * affine.scale, prev.bias * affine.scale + affine.offset)
    del ops[i]
    return True


def _fold_into_next_dense(ops: list[Op], i: int, feature_shape: tuple[int, int, int]) -> bool:
    """Affine -> Dense, or Affine -> Flatten / global average -> Dense: W' = diag(s) W, b' = o W + b."""
    affine = ops[i]
    assert isinstance(affine, Affine)
    j, repeat = i + 1, 1
    if j < len(ops) and isinstance(ops[j], Reduce):
        reduce = ops[j]
        assert isinstance(reduce, Reduce)
        if reduce.mode == "max":  # max(x * s + o) != max(x) * s + o when s < 0
            return False
        if reduce.mode == "flatten":
            repeat = _shape_before(ops, j, feature_shape)
        j += 1
    dense = ops[j] if j < len(ops) else None
    if not isinstance(dense, Dense):
        return False
    scale, offset = np.tile(affine.scale, repeat), np.tile(affine.offset, repeat)  # Flatten order: channel fastest
    kernel = (dense.kernel * scale[:, None]).astype(np.float32)
    ops[j] = Dense(kernel, (offset @ dense.kernel + dense.bias).astype(np.float32))
    del ops[i]
    return True


def _shape_before(ops: list[Op], j: int, feature_shape: tuple[int, int, int]) -> int:
    """Number of spatial positions entering op j (a Flatten), found by running the spatial ops on zeros."""
    x: F32 = np.zeros(feature_shape, np.float32)
    for op in ops[:j]:
        x = op.forward(x)
    return int(x.shape[0] * x.shape[1])


def _add_spatial_sums(ops: list[Op], feature_shape: tuple[int, int, int]) -> None:
    """For a Dense right after Flatten: its kernel rows summed over the spatial positions, (k, n_out)."""
    for j, op in enumerate(ops):
        if isinstance(op, Reduce) and op.mode == "flatten" and j + 1 < len(ops) and isinstance(ops[j + 1], Dense):
            dense = ops[j + 1]
            assert isinstance(dense, Dense)
            positions = _shape_before(ops, j, feature_shape)
            k = dense.kernel.shape[0] // positions
            dense.spatial_sum = dense.kernel.reshape(positions, k, -1).sum(axis=0, dtype=np.float64).astype(np.float32)
