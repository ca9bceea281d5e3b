"""The NumPy head: the layers after the target layer, run forward for the class scores and backward for dScore/dA.

TFLite cannot differentiate, so the model is cut at the target layer: features.tflite computes A (h, w, k) and this
head does the rest. Its backward pass is a few matrix-vector products; what does not depend on the frame was
precomputed at export (BatchNorm folded into Dense layers, the spatial sums of a Flatten->Dense kernel) or when the
head loads (the Grad-CAM weight plan, and for heads linear in A the channel weights of every class).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from edge.errors import BundleError
from edge.explain import activations
from edge.explain.bundle_check import read_head_archive
from edge.explain.head_ops import F32, Activation, Affine, Dense, HeadPass, Op, Pool2D, Reduce
from edge.explain.weight_plan import WeightPlan, Weights, backward

HEAD_FORMAT = 1
# What a head built from a hostile file's arrays may raise, building or on its first pass: a BundleError each.
HEAD_FAILURES = (ValueError, TypeError, IndexError, KeyError, AttributeError, OverflowError, ZeroDivisionError,
                 MemoryError, FloatingPointError)


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
        self._sigmoid_output = output_activation == "sigmoid"
        # dLogit_c/dLogits for every class c, (C, C) float32: the 'logit' score's gradient is a row, not a new array.
        self._one_hot = np.eye(self.num_classes, dtype=np.float32)
        self._one_hot.flags.writeable = False
        self._one_hot_rows = tuple(self._one_hot)  # read-only views: a class's row without a NumPy call
        reduce_at = [i for i, op in enumerate(ops) if isinstance(op, Reduce)]
        if len(reduce_at) != 1:
            raise ValueError("a head needs exactly one Flatten or global pooling between A and the Dense layers")
        self._plan = WeightPlan(ops, reduce_at[0], input_shape, self._one_hot_rows)
        # True: no activation before the reduction, so Grad-CAM's weights never form the (h, w, k) gradient
        self.fast_channel_weights = self._plan.fast
        # weights(hp, c) -> (k,) Grad-CAM weights of class c's logit; weights(hp, c, dz) of the score whose
        # dScore/dLogits is dz. The one way to them (edge/explain/weight_plan.py).
        self.weights: Weights = self._plan.weights
        self._stored_cam_weights = cam_weights  # what head.npz held, written back as it was
        # (k, C): for heads linear in A, the spatial mean of dLogit_c/dA per channel, a constant of the model (the CAM
        # method's class weights): as stored, else derived here; None for the other heads.
        self.cam_weights = cam_weights if cam_weights is not None else self._plan.constant(self.forward,
                                                                                           self.num_classes)

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

    def gradient(self, hp: HeadPass, dz: F32) -> F32:
        """The full dScore/dA (h, w, k), for the element-wise CAM methods."""
        return backward(self.ops, hp, dz).astype(np.float32, copy=False)

    # ---- (de)serialisation ---------------------------------------------------------------------------------------

    def save(self, path: Path) -> None:
        arrays: dict[str, NDArray[Any]] = {}
        specs = []
        for i, op in enumerate(self.ops):
            spec, op_arrays = _op_to_spec(op)
            specs.append(spec)
            arrays.update({f"{i}.{name}": value for name, value in op_arrays.items()})
        if self._stored_cam_weights is not None:
            arrays["cam_weights"] = self._stored_cam_weights
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
        """The head in head.npz at path, read with edge.explain.bundle_check's size checks and tried on zeros."""
        return cls.from_archive(path, *read_head_archive(path))

    @classmethod
    def from_archive(cls, path: Path, header: dict[str, Any], arrays: dict[str, NDArray[Any]]) -> Head:
        """The head that head.npz's spec (header) and arrays describe, run once on zeros so that arrays whose shapes
        disagree fail here, as a BundleError naming path, not in the first frame."""
        if header.get("head_format") != HEAD_FORMAT:
            raise BundleError(path, f"head format {header.get('head_format')!r} is not supported ({HEAD_FORMAT})")
        try:
            ops = [_op_from_spec(spec, i, arrays) for i, spec in enumerate(header["ops"])]
            h, w, k = (int(v) for v in header["input_shape"])
            head = cls(ops, (h, w, k), str(header["output_activation"]), arrays.get("cam_weights"))
        except (*HEAD_FAILURES, AssertionError) as e:  # AssertionError: the plan's shape invariants
            reason = str(e)[:200] or "arrays whose shapes do not fit together"
            raise BundleError(path, f"malformed head ({reason})") from e
        try:
            head.forward(np.zeros(head.input_shape, np.float32))
        except HEAD_FAILURES as e:
            raise BundleError(path, f"malformed head: its arrays do not fit together ({str(e)[:200]})") from e
        return head


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
