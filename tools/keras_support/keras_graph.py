"""Walking a Keras 3 functional graph: the chain of layers between a target layer and the output, target candidates,
and the FLOPs of the part that becomes the TFLite feature model.

Tensors are followed through their (operation, node) history rather than `layer.output`, because a Sequential model
rebuilt as a functional graph has layers with two inbound nodes, and `layer.output` names the wrong one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

REDUCING_LAYERS = ("Flatten", "GlobalAveragePooling2D", "GlobalMaxPooling2D")


class GraphError(Exception):
    """The model's graph does not have the shape the export needs."""


@dataclass
class Chain:
    target_tensor: Any  # KerasTensor: the target layer's output, A
    layers: list[Any]  # the layers from A to the model output, in order


def _producer(tensor: Any) -> tuple[Any, Any]:
    history = tensor._keras_history
    return history.operation, history.operation._inbound_nodes[history.node_index]


def _single_output(model: Any) -> Any:
    if len(model.outputs) != 1:
        raise GraphError(f"the model has {len(model.outputs)} outputs; export supports single-output classifiers")
    return model.outputs[0]


def chain_to_output(model: Any, target: str) -> Chain:
    """The layers after `target` up to the output; they must form a chain (each layer one input, one output)."""
    tensor = _single_output(model)
    layers: list[Any] = []
    while True:
        layer, node = _producer(tensor)
        if layer.name == target:
            return Chain(tensor, layers[::-1])
        if node.is_input or not node.input_tensors:
            raise GraphError(f"layer {target!r} is not on the path to the model output")
        if len(node.input_tensors) != 1:
            names = ", ".join(_producer(t)[0].name for t in node.input_tensors)
            raise GraphError(
                f"layer {layer.name!r} after the target {target!r} joins several inputs ({names}); the head must be a "
                "simple chain: choose a later target layer"
            )
        layers.append(layer)
        tensor = node.input_tensors[0]


def chain_from_input(target_tensor: Any) -> list[Any] | None:
    """The layers from the model input to target_tensor, in order; None if the graph is not a plain chain there."""
    layers: list[Any] = []
    tensor = target_tensor
    while True:
        layer, node = _producer(tensor)
        if node.is_input:
            return layers[::-1]
        if len(node.input_tensors) != 1:
            return None
        layers.append(layer)
        tensor = node.input_tensors[0]


def default_target(model: Any) -> str:
    """The last layer with a 4-D output before the first Flatten/global pooling on the way to the output."""
    tensor = _single_output(model)
    while True:
        layer, node = _producer(tensor)
        if node.is_input or len(node.input_tensors) != 1:
            raise GraphError("found no Flatten or global pooling on a simple chain to the output: pass --target-layer")
        tensor = node.input_tensors[0]
        if type(layer).__name__ in REDUCING_LAYERS:
            producer, _ = _producer(tensor)
            if len(tensor.shape) != 4:
                raise GraphError(f"the input of {layer.name!r} is not a 4-D feature map: pass --target-layer")
            return str(producer.name)


def feature_layers(model: Any) -> Iterator[tuple[Any, Any]]:
    """Every (layer, output tensor) of the graph with a 4-D output, from the input towards the output."""
    seen: set[int] = set()
    found: list[tuple[Any, Any]] = []
    stack = [_single_output(model)]
    while stack:
        tensor = stack.pop()
        layer, node = _producer(tensor)
        if id(node) in seen:
            continue
        seen.add(id(node))
        if len(tensor.shape) == 4 and not node.is_input:
            found.append((layer, tensor))
        stack.extend(node.input_tensors)
    order = {id(layer): i for i, layer in enumerate(model.layers)}
    yield from sorted(found, key=lambda item: order.get(id(item[0]), -1))


def flops(target_tensor: Any) -> int:
    """2 x multiply-accumulates of the Conv2D, DepthwiseConv2D and Dense layers that compute target_tensor."""
    total, seen = 0, set()
    stack = [target_tensor]
    while stack:
        layer, node = _producer(stack.pop())
        if id(node) in seen or node.is_input:
            continue
        seen.add(id(node))
        stack.extend(node.input_tensors)
        total += _layer_flops(layer, node.input_tensors[0].shape, node.output_tensors[0].shape)
    return total


def _layer_flops(layer: Any, in_shape: Any, out_shape: Any) -> int:
    kind = type(layer).__name__
    if kind == "Conv2D":
        kh, kw = layer.kernel_size
        out_positions = out_shape[1] * out_shape[2]
        return int(2 * out_positions * out_shape[3] * kh * kw * in_shape[3] // layer.groups)
    if kind == "DepthwiseConv2D":
        kh, kw = layer.kernel_size
        return int(2 * out_shape[1] * out_shape[2] * out_shape[3] * kh * kw)
    if kind == "Dense":
        positions = 1
        for d in out_shape[1:-1]:
            positions *= d
        return int(2 * positions * in_shape[-1] * out_shape[-1])
    return 0


def input_of_output_layer(model: Any) -> Any:
    """The tensor entering the model's last layer (the logits' source)."""
    _, node = _producer(_single_output(model))
    return node.input_tensors[0]
