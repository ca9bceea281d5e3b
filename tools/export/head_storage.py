"""--head-dtype: how head.npz stores the head's Dense kernels. The device always computes in float32.

float16 halves the file (VGG16's 25088x4096 fc1: 411 MB -> 205 MB) at the cost of rounding each weight to 11
significant bits; tools.verify reports what that costs in map and probability agreement. Biases, BatchNorm scales and
offsets are small and stay float32. A Flatten -> Dense kernel's spatial sums are recomputed from the rounded kernel,
so that the cheap Grad-CAM path stays the exact gradient of the head that is stored.
"""

from __future__ import annotations

import numpy as np

from edge.explain.head import Head
from edge.explain.head_ops import Dense


def store_as(head: Head, dtype: str) -> Head:
    """The head with its Dense kernels rounded to `dtype` ("float32": unchanged, "float16")."""
    if dtype == "float32":
        return head
    if dtype != "float16":
        raise ValueError(f"head dtype {dtype!r} is not float32 or float16")
    for i, op in enumerate(head.ops):
        if isinstance(op, Dense):
            kernel = op.kernel.astype(np.float16)  # (n_in, n_out), saved as is by Head.save
            spatial_sum = None
            if op.spatial_sum is not None:
                k = op.spatial_sum.shape[0]
                rounded = kernel.astype(np.float32).reshape(-1, k, kernel.shape[1])  # (positions, k, n_out)
                spatial_sum = rounded.sum(axis=0, dtype=np.float64).astype(np.float32)
            head.ops[i] = Dense(kernel, op.bias, spatial_sum)  # type: ignore[arg-type]
    return head


def head_bytes(head: Head) -> int:
    """Bytes of the arrays head.npz will hold."""
    total = 0
    for op in head.ops:
        for name in ("kernel", "bias", "spatial_sum", "scale", "offset"):
            value = getattr(op, name, None)
            total += value.nbytes if value is not None else 0
    return total
