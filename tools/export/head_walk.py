"""The part of reading a head that PyTorch and ONNX share: a walk over the head's ops from the target's output, which
knows the current value's shape in edge's layout and, after a Flatten of a feature map, how to reorder what reads it.

Both frameworks are NCHW and edge is NHWC: a Flatten of a feature map orders its vector (c, h, w) in the framework
and (h, w, c) on the device, so the rows of the Linear/Gemm (or the BatchNorm's scale and offset) that read it are
permuted to the device's order. tools/export/head_passes.py finishes the ops the walk collects.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from edge.explain.head_ops import Affine, Dense, Op, Pool2D, Reduce


@dataclass
class HeadWalk:
    shape: tuple[int, ...]  # edge layout without the batch axis: (h, w, c) for a map, (n,) for a vector
    # For a vector made by flattening a map: edge position i holds the framework's flat feature perm[i].
    perm: NDArray[np.int64] | None = None
    ops: list[Op] = field(default_factory=list)
    names: list[str] = field(default_factory=list)  # identities too: the manifest lists what the head was made from

    @property
    def is_map(self) -> bool:
        return len(self.shape) == 3

    def add(self, ops: list[Op], name: str) -> None:
        """Append the edge ops of one framework op (possibly none) and follow the shape they give."""
        for op in ops:
            if isinstance(op, Reduce | Pool2D):
                before = self.shape
                self.shape = op.forward(np.zeros(before, np.float32)).shape
                if isinstance(op, Reduce) and op.mode == "flatten":
                    self.perm = flatten_permutation(*before)
            elif isinstance(op, Dense):
                self.shape, self.perm = (int(op.kernel.shape[1]),), None
        self.ops += ops
        self.names.append(name)

    def permuted(self, rows: NDArray[np.float32]) -> NDArray[np.float32]:
        """Rows indexed by the framework's flat feature, in the device's order (unchanged if no Flatten came last)."""
        return rows if self.perm is None else np.ascontiguousarray(rows[self.perm])


def flatten_permutation(h: int, w: int, c: int) -> NDArray[np.int64]:
    """(h*w*c,): edge's flat position i (h, w, c order) holds NCHW's flat feature perm[i] (c, h, w order)."""
    return np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).reshape(-1)


def batchnorm_affine(gamma: NDArray[np.float64], beta: NDArray[np.float64], mean: NDArray[np.float64],
                     var: NDArray[np.float64], eps: float, walk: HeadWalk) -> Affine:
    """Inference BatchNorm, y = (x - mean) * gamma / sqrt(var + eps) + beta, as an Affine in the walk's order."""
    scale = gamma / np.sqrt(var + eps)
    offset = beta - mean * scale
    return Affine(walk.permuted(scale.astype(np.float32)), walk.permuted(offset.astype(np.float32)))


def unsupported_message(what: str, target: str, supported: str, why: str = "") -> str:
    """The one line both front ends give for an op after the target that the NumPy head cannot run."""
    reason = why or f"supported: {supported}"
    return (f"op {what} after the target {target!r} is not supported by the NumPy head ({reason}); "
            "choose a later target (see --list-layers)")
