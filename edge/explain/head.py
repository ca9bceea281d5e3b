"""The NumPy head: the layers after the target layer, run forward for the class scores and backward for dScore/dA.

TFLite cannot differentiate, so the model is cut at the target layer: features.tflite computes A (h, w, k) and this
head does the rest. Its backward pass is a few matrix-vector products; what does not depend on the frame was
precomputed at export (BatchNorm folded into Dense layers, the spatial sums of a Flatten->Dense kernel, and for heads
that are linear in A the channel weights of every class).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from edge.errors import BundleError
from edge.explain import activations
from edge.explain.bundle_check import read_head_archive
from edge.explain.head_ops import F32, Activation, Affine, Dense, Op, Pool2D, Reduce

HEAD_FORMAT = 1
# The largest (C x k x n1) the channel-weight plan precomputes per class (float32 elements: 16 MB).
_PER_CLASS_MAX = 4 * 1024 * 1024
_sign = np.sign


@dataclass(slots=True)
class HeadPass:
    """One forward pass, kept for the backward passes that follow it (one per explained class)."""

    inputs: list[F32]  # the input of every op; inputs[0] is A (h, w, k)
    outputs: list[F32]  # the output of every op
    logits: F32  # (C,) before the output activation
    probabilities: F32  # (C,)


# (head pass, class index) -> (k,) float32 Grad-CAM weights of that class's logit
LogitWeights = Callable[[HeadPass, int], F32]


class _ChannelWeightPlan:
    """Grad-CAM's channel weights as the fewest per-frame products, for a head whose spatial ops keep the gradient's
    spatial sum up to a per-channel factor (pooling, affine) and whose vector part is Dense [-> ... ->] Dense.

    The spatial mean of dScore/dA is then factor * (matrix @ g1), with g1 the gradient at the first Dense's output,
    matrix (k, n1) the first Dense's kernel (global pooling: the pooled vector's gradient IS the spatial sum) or its
    kernel's spatial sums (Flatten), and factor (k,) every spatial Affine's scale over h*w. g1 is the last Dense's
    kernel times dScore/dLogits, back through the ops between; for the 'logit' score that product is a row of the
    kernel, so the last Dense costs nothing per frame.
    """

    def __init__(self, ops: list[Op], reduce_at: int, input_shape: tuple[int, int, int]) -> None:
        h, w, k = input_shape
        first, last = ops[reduce_at + 1], ops[-1]
        assert isinstance(first, Dense) and isinstance(last, Dense)
        reduce = ops[reduce_at]
        assert isinstance(reduce, Reduce)
        flatten = reduce.mode == "flatten"
        summed = first.spatial_sum if flatten else first.kernel  # (k, n1) float32
        assert summed is not None and summed.shape[0] == k
        scale = np.ones(k, np.float64)
        for op in ops[:reduce_at]:
            if isinstance(op, Affine):
                scale *= op.scale
        factor = scale / (h * w)  # (k,) float64: the spatial mean of dScore/dA per unit of the pooled gradient
        self._k = k
        self.single_dense = len(ops) == reduce_at + 2  # the reduction's Dense is the last op: linear in A
        self.last_kernel = last.kernel  # (n_last_in, C)
        self.middle = list(range(len(ops) - 2, reduce_at + 1, -1))  # ops strictly between the two Denses, last first
        # The per-frame product's matrix, (k, n1) float32, and what multiplies its result (None: nothing). Flatten:
        # the kernel's spatial sums times the factor, computed in float64, a constant the forward pass never reads.
        # Global pooling: the first Dense's own kernel, which every forward pass has just read, so that the product
        # finds it in cache (a scaled copy was not: MobileNetV2's (1280 x 128) kernel behind ReLU6, a whole explain
        # call 159 -> 78 us at 1 thread, 115 -> 68 us at 2), and the factor after it.
        to_channels = summed * factor[:, None]  # (k, n1) float64
        matrix = np.ascontiguousarray(to_channels, np.float32) if flatten else summed
        self._after: F32 | None = None if flatten else factor.astype(np.float32)
        self._matrix_3d = matrix.reshape(k, 1, -1)  # (k, 1, n1) view, for product()
        # (C, n): for class c's logit, the gradient at the last Dense's input (one Dense: the channel weights)
        rows = to_channels if self.single_dense else last.kernel
        self.logit_rows = np.ascontiguousarray(rows.T, np.float32)
        self.logit_rows.flags.writeable = False
        # The rows as a tuple of read-only views: picking a class's row is a tuple index, not a NumPy call.
        self.rows: tuple[F32, ...] = tuple(self.logit_rows)
        # The commonest hidden layer, Dense -> ReLU -> Dense: ReLU's gradient is the 0/1 mask of its output, so the
        # per-frame part is one multiply and one product (no backward pass through a generic op).
        only = ops[self.middle[0]] if len(self.middle) == 1 else None
        self.relu_at = self.middle[0] if isinstance(only, Activation) and only.name == "relu" else None
        # ... and for Flatten, with the matrix times each class's row made at load, (C, k, 1, n1) float32, the
        # per-frame part is the mask and one product: np.sign of ReLU's output (>= 0) IS the 0/1 mask, in float32,
        # in one call. In a whole explain call (Flatten CNN, after the feature model) 17.2 -> 11.7 us median, 14.1 ->
        # 9.6 us 10th percentile. Only while the per-class copies stay small: a 1000-class head would need C times
        # the memory. (Global pooling keeps the kernel the forward pass has just read.)
        self.per_class: tuple[F32, ...] | None = None
        if flatten and self.relu_at is not None and self.logit_rows.size * k <= _PER_CLASS_MAX:
            per_class = to_channels[None] * self.logit_rows[:, None, :]  # (C, k, n1) float64
            stacked = np.ascontiguousarray(per_class, dtype=np.float32).reshape(len(self.rows), k, 1, -1)
            stacked.flags.writeable = False
            self.per_class = tuple(stacked)
        self.logit_weights = self._logit_weights(ops)

    def _logit_weights(self, ops: list[Op]) -> LogitWeights:
        """logit_weights(hp, class_index) -> (k,) Grad-CAM weights of one class's logit, chosen once for this head:
        after the feature model every Python frame and attribute lookup is a cache miss (issue 25: the whole
        per-frame tail of explain is a few dozen microseconds), so the per-frame function reads only its own locals."""
        rows, k = self.rows, self._k
        if self.single_dense:
            return lambda hp, class_index: rows[class_index]
        relu_at = self.relu_at
        if relu_at is not None and self.per_class is not None:
            per_class = self.per_class

            def relu_per_class(hp: HeadPass, class_index: int, sign: np.ufunc = _sign) -> F32:
                # (k, 1, n1) . (n1,) -> (k, 1): one BLAS dot per channel, as in product(). TensorFlow's ReluGrad: the
                # gradient where the output is > 0, else 0.
                return per_class[class_index].dot(sign(hp.outputs[relu_at])).reshape(k)

            return relu_per_class
        if relu_at is not None:
            return lambda hp, class_index: self.product(rows[class_index] * _sign(hp.outputs[relu_at]))
        return lambda hp, class_index: self.weights(ops, hp, rows[class_index])

    def weights(self, ops: list[Op], hp: HeadPass, g: F32) -> F32:
        """(k,) from g = the gradient at the last Dense's input (one Dense: dScore/dLogits)."""
        if not self.single_dense:
            for i in self.middle:
                g = ops[i].backward(hp.inputs[i], hp.outputs[i], g)
        return self.product(g)

    def product(self, g: F32) -> F32:
        """factor * (matrix @ g), (k,). Through the (k, 1, n1) view, ndarray.dot runs one BLAS dot per channel: never
        NumPy's threaded matrix-vector product (a pool wake-up costs more than this product), and in a whole explain
        call, with the matrix out of cache after the feature model, 17 us instead of einsum's 31 (Flatten CNN, k = n1
        = 128, median of 1,400 calls each right after a forward pass)."""
        weights = self._matrix_3d.dot(g).reshape(self._k)
        if self._after is not None:
            weights *= self._after
        return weights


class Head:
    """Forward and backward of the post-target layers, as loaded from head.npz."""

    def __init__(
        self,
        ops: list[Op],
        input_shape: tuple[int, int, int],
        output_activation: str,
        cam_weights: F32 | None = None,
    ) -> None:
        self.ops = ops
        self.input_shape = input_shape
        self.output_activation = output_activation
        # (k, C): for heads linear in A, the spatial mean of dLogit_c/dA per channel, a constant of the model.
        self.cam_weights = cam_weights
        # dLogit_c/dLogits for every class c, (C, C) float32: the 'logit' score's gradient is a row, not a new array.
        self._one_hot = np.eye(self.num_classes, dtype=np.float32)
        self._one_hot.flags.writeable = False
        self._one_hot_rows = tuple(self._one_hot)  # read-only views: a class's row without a NumPy call
        reduce_at = [i for i, op in enumerate(ops) if isinstance(op, Reduce)]
        if len(reduce_at) != 1:
            raise ValueError("a head needs exactly one Flatten or global pooling between A and the Dense layers")
        self._reduce_at = reduce_at[0]
        # The cheap channel-weight path needs every spatial op to keep the spatial sum of the gradient up to a
        # per-channel factor: pooling routes each output's gradient to its inputs without changing its sum, and an
        # affine op scales it. An activation before the reduction does not, and takes the full-gradient path.
        self.fast_channel_weights = all(isinstance(op, Pool2D | Affine) for op in ops[: self._reduce_at])
        self._plan = self._channel_weight_plan()
        self._sigmoid_output = output_activation == "sigmoid"
        # Grad-CAM channel weights (k,) of one class's logit: channel_weights(hp, one-hot), with the last Dense's
        # product replaced by a row of its kernel (and, for a head linear in A, no product at all).
        self.logit_channel_weights: LogitWeights = (
            self._plan.logit_weights if self._plan is not None
            else lambda hp, class_index: self.channel_weights(hp, self._one_hot[class_index])
        )

    def _channel_weight_plan(self) -> _ChannelWeightPlan | None:
        ops, at = self.ops, self._reduce_at
        reduce = ops[at]
        assert isinstance(reduce, Reduce)
        first = ops[at + 1] if at + 1 < len(ops) else None
        if not (self.fast_channel_weights and isinstance(first, Dense) and isinstance(ops[-1], Dense)):
            return None
        if reduce.mode == "flatten" and first.spatial_sum is None:
            return None
        return _ChannelWeightPlan(ops, at, self.input_shape)

    @property
    def num_classes(self) -> int:
        last_dense = next(op for op in reversed(self.ops) if isinstance(op, Dense))
        return int(last_dense.kernel.shape[1])

    def forward(self, A: F32) -> HeadPass:
        inputs, outputs = [], []
        x = A
        for op in self.ops:
            inputs.append(x)
            x = op.forward(x)
            outputs.append(x)
        logits = x
        # a model without an output activation is reported through a softmax of its logits
        probabilities = activations.forward("sigmoid", logits) if self._sigmoid_output else _softmax(logits)
        return HeadPass(inputs, outputs, logits, probabilities)

    def score_gradient(self, hp: HeadPass, class_index: int, score: str) -> F32:
        """dScore/dLogits (C,) for score 'logit' or 'probability' of one class."""
        dz = self._one_hot_rows[class_index]  # (C,) float32, read-only
        if score == "logit":
            return dz
        p = hp.probabilities
        if self.output_activation == "sigmoid":
            return dz * p * (1.0 - p)
        return (p[class_index] * (dz - p)).astype(np.float32)

    def channel_weights(self, hp: HeadPass, dz: F32) -> F32:
        """Grad-CAM channel weights (k,): the spatial mean of dScore/dA, without forming dScore/dA when possible."""
        plan = self._plan
        if plan is not None:
            return plan.weights(self.ops, hp, dz if plan.single_dense else plan.last_kernel @ dz)
        h, w, _ = self.input_shape
        if self.cam_weights is not None:
            return self.cam_weights @ dz
        if not self.fast_channel_weights:
            return self.gradient(hp, dz).mean(axis=(0, 1), dtype=np.float32)
        g = self._backward_vector_part(hp, dz)
        for i in range(self._reduce_at - 1, -1, -1):
            op = self.ops[i]
            if isinstance(op, Affine):
                g = g * op.scale
        return (g / (h * w)).astype(np.float32)

    def _backward_vector_part(self, hp: HeadPass, dz: F32) -> F32:
        """The spatial sum (k,) of the gradient w.r.t. the reduction's input."""
        g = dz
        first_vector = self._reduce_at + 1
        for i in range(len(self.ops) - 1, first_vector - 1, -1):
            op = self.ops[i]
            if i == first_vector and isinstance(op, Dense) and op.spatial_sum is not None:
                return op.spatial_sum @ g  # (k, n_out) @ (n_out,): skips the (h*w*k x n_out) product
            g = op.backward(hp.inputs[i], hp.outputs[i], g)
        reduce_input = hp.inputs[self._reduce_at]
        reduce = self.ops[self._reduce_at]
        assert isinstance(reduce, Reduce)
        if reduce.mode == "flatten":
            return g.reshape(reduce_input.shape).sum(axis=(0, 1))
        return g  # global pooling: the spatial sum of its input gradient is its output gradient

    def gradient(self, hp: HeadPass, dz: F32) -> F32:
        """The full dScore/dA (h, w, k), for the element-wise CAM methods."""
        g = dz
        for i in range(len(self.ops) - 1, -1, -1):
            g = self.ops[i].backward(hp.inputs[i], hp.outputs[i], g)
        return g.astype(np.float32, copy=False)

    # ---- (de)serialisation ---------------------------------------------------------------------------------------

    def save(self, path: Path) -> None:
        arrays: dict[str, NDArray[Any]] = {}
        specs = []
        for i, op in enumerate(self.ops):
            spec, op_arrays = _op_to_spec(op)
            specs.append(spec)
            arrays.update({f"{i}.{name}": value for name, value in op_arrays.items()})
        if self.cam_weights is not None:
            arrays["cam_weights"] = self.cam_weights
        header = {
            "head_format": HEAD_FORMAT,
            "input_shape": list(self.input_shape),
            "output_activation": self.output_activation,
            "ops": specs,
        }
        with path.open("wb") as f:
            np.savez(f, spec=np.array(json.dumps(header)), **arrays)

    @classmethod
    def load(cls, path: Path) -> Head:
        header, arrays = read_head_archive(path)  # only the arrays the spec names, sizes checked first
        if header.get("head_format") != HEAD_FORMAT:
            raise BundleError(path, f"head format {header.get('head_format')!r} is not supported ({HEAD_FORMAT})")
        try:
            ops = [_op_from_spec(spec, i, arrays) for i, spec in enumerate(header["ops"])]
            h, w, k = (int(v) for v in header["input_shape"])
            return cls(ops, (h, w, k), str(header["output_activation"]), arrays.get("cam_weights"))
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError, ZeroDivisionError,
                AssertionError) as e:  # AssertionError: the plan's shape invariants, on arrays that break them
            reason = str(e)[:200] or "arrays whose shapes do not fit together"
            raise BundleError(path, f"malformed head ({reason})") from e


def _softmax(logits: F32) -> F32:
    """(C,) float32 probabilities: the output softmax in three NumPy calls and one temporary."""
    e = np.exp(logits - logits.max())
    e /= e.sum()
    return e


def _op_to_spec(op: Op) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
    if isinstance(op, Pool2D):
        return {"op": "pool", "mode": op.mode, "pool": list(op.pool), "strides": list(op.strides),
                "padding": op.padding}, {}
    if isinstance(op, Affine):
        return {"op": "affine"}, {"scale": op.scale, "offset": op.offset}
    if isinstance(op, Activation):
        return {"op": "activation", "name": op.name}, {}
    if isinstance(op, Reduce):
        return {"op": "reduce", "mode": op.mode}, {}
    arrays = {"kernel": op.kernel, "bias": op.bias}
    if op.spatial_sum is not None:
        arrays["spatial_sum"] = op.spatial_sum
    return {"op": "dense"}, arrays


def _op_from_spec(spec: dict[str, Any], i: int, arrays: dict[str, NDArray[Any]]) -> Op:
    def arr(name: str) -> F32:
        return np.ascontiguousarray(arrays[f"{i}.{name}"], dtype=np.float32)

    kind = spec["op"]
    if kind == "pool":
        pool = (int(spec["pool"][0]), int(spec["pool"][1]))
        strides = (int(spec["strides"][0]), int(spec["strides"][1]))
        return Pool2D(str(spec["mode"]), pool, strides, str(spec["padding"]))
    if kind == "affine":
        return Affine(arr("scale"), arr("offset"))
    if kind == "activation":
        if spec["name"] not in activations.ACTIVATIONS:
            raise ValueError(f"unknown activation {spec['name']!r}")
        return Activation(str(spec["name"]))
    if kind == "reduce":
        return Reduce(str(spec["mode"]))
    if kind == "dense":
        spatial_sum = arr("spatial_sum") if f"{i}.spatial_sum" in arrays else None
        return Dense(arr("kernel"), arr("bias"), spatial_sum)
    raise ValueError(f"unknown op {kind!r}")
