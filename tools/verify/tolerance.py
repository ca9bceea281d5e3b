"""What float32 allows: the tolerances tools.verify judges against, derived from the model rather than fixed.

Two implementations of the same float32 layer (TensorFlow's oneDNN, TFLite's XNNPACK) add the same products in a
different order. A sum of n products then differs by about eps * sqrt(n) of its size (eps = 2^-23, the rounding of
float32; random-walk accumulation of one rounding per addition), and through a network of layers with fan-ins n_1,
n_2, ... these differences add up like a random walk: eps * sqrt(n_1 + n_2 + ...). The feature tolerance is that
times a safety factor (FEATURE_SAFETY) for the worse-conditioned algorithms backends pick (Winograd convolutions,
reassociated depthwise sums). A bug is not a rounding: a wrong channel order, preprocessing or fold moves activations
by 1-100% of their size, thousands of times more.

The head's tolerance is the same formula over its Dense layers with a smaller factor (same algorithm, and the export
promises it). A float16 head is not exact by choice: tools.verify judges it on agreement (same top-1, maps correlated)
and reports its cost. A top-1 flip is excused as a near tie only where TensorFlow's own probabilities of the two
classes are within twice the drift the check allows (the tolerance; FLOAT16_HEAD_DP for a float16 head).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

EPS32 = 2.0**-23  # float32 unit roundoff (relative spacing of 1.0)
FEATURE_SAFETY = 32.0
HEAD_SAFETY = 16.0  # the probability score's map cancels (p_c (w_c - sum_j p_j w_j)): 1e-5 seen on ResNet50
EFFECT_FACTOR = 10.0  # map and probability drift allowed per unit of feature tolerance
# The probability drift a float16 head is allowed to explain a top-1 flip with (a near tie: TensorFlow's two classes
# within twice this): float16's epsilon, 12x the largest drift measured (VGG16's 1000-class head: 7.8e-5).
FLOAT16_HEAD_DP = 2.0**-10


@dataclass(frozen=True)
class Tolerances:
    layers: int  # layers that accumulate products (Conv2D, DepthwiseConv2D, SeparableConv2D x2, Dense) before A
    fan_in_sum: int  # sum of their fan-ins
    head_fan_in_sum: int  # sum of the head's Dense fan-ins
    head_dtype: str
    user_scale: float = 1.0  # --tolerance: a multiple of the derived values

    @property
    def features(self) -> float:
        """max |A_tflite - A_tf| / max |A_tf| allowed."""
        return self.user_scale * FEATURE_SAFETY * EPS32 * math.sqrt(max(self.fan_in_sum, 1))

    @property
    def effect(self) -> float:
        """Relative map difference and absolute probability difference allowed through the feature drift."""
        return EFFECT_FACTOR * self.features

    @property
    def head(self) -> float:
        """Relative map difference and absolute probability difference allowed for the head on TF's own A."""
        return self.user_scale * HEAD_SAFETY * EPS32 * math.sqrt(max(self.head_fan_in_sum, 1))


def _fan_ins(layer: Any) -> list[int]:
    """The number of products each output of the layer sums, per accumulating step."""
    kind = type(layer).__name__
    if kind in ("Conv2D", "Dense"):
        shape = tuple(int(v) for v in layer.kernel.shape)
        return [math.prod(shape[:-1])]
    if kind == "DepthwiseConv2D":
        return [math.prod(int(v) for v in layer.kernel.shape[:2])]
    if kind == "SeparableConv2D":
        depthwise = layer.depthwise_kernel.shape
        return [int(depthwise[0]) * int(depthwise[1]), int(layer.pointwise_kernel.shape[2])]
    return []


def derive(model: Any, target: str, head_dtype: str, user_scale: float = 1.0) -> Tolerances:
    """The tolerances for `model` cut at `target`: its feature model (input -> target) and its head."""
    import keras

    from tools.keras_support import keras_graph

    chain = keras_graph.chain_to_output(model, target)
    feature_model = keras.Model(model.inputs, chain.target_tensor)
    fan_ins = [n for layer in feature_model.layers for n in _fan_ins(layer)]
    head_fan_ins = [n for layer in chain.layers for n in _fan_ins(layer)]
    return Tolerances(len(fan_ins), sum(fan_ins), sum(head_fan_ins), head_dtype, user_scale)
