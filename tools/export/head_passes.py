"""The passes every front end's head goes through once its layers are edge ops: the output activation split off, the
shape checked (a reduction, then a Dense at the end), BatchNorms folded into Dense kernels, Flatten->Dense spatial sums
precomputed. No cam_weights: for a head linear in A they follow from its kernels (edge.explain.head.Head derives
them when it loads).
"""

from __future__ import annotations

import numpy as np

from edge.explain.head import Head
from edge.explain.head_ops import F32, Activation, Affine, Dense, Op, Reduce


class HeadShapeError(Exception):
    """The head's ops do not form a classifier head (no reduction, or no Dense at the end)."""


def finish_head(ops: list[Op], feature_shape: tuple[int, int, int]) -> Head:
    """The head for `ops` (edge ops from the target's output to the model output), checked, folded and precomputed."""
    ops = list(ops)
    output_activation = "none"
    last = ops[-1] if ops else None
    if isinstance(last, Activation) and last.name in ("softmax", "sigmoid"):
        output_activation = last.name
        ops.pop()
    if not any(isinstance(op, Reduce) for op in ops):
        raise HeadShapeError("the head never reduces the feature map: put Flatten or global pooling after the target")
    if not isinstance(next((op for op in reversed(ops) if not isinstance(op, Affine)), None), Dense):
        raise HeadShapeError("the head must end in a Dense layer (optionally followed by softmax or sigmoid)")
    ops = fold_affines(ops, feature_shape)
    _add_spatial_sums(ops, feature_shape)
    return Head(ops, feature_shape, output_activation)


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

