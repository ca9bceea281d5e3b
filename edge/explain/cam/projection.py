"""The first principal component of a map's channels, as pytorch-grad-cam's get_2d_projection computes it (Eigen-CAM,
Eigen-Grad-CAM, eigen_smooth), with the sign that its SVD leaves arbitrary fixed.

pytorch-grad-cam centres the (h*w, k) matrix per channel, takes the SVD and projects on the first right singular
vector. A singular vector's sign depends on the LAPACK build, so the reference itself is defined only up to sign; here
the projection is made to correlate positively with `orient` (a map of where the evidence is), which is stable from
frame to frame.
"""

from __future__ import annotations

import numpy as np

from edge.explain.head_ops import F32


def first_component(X: F32, orient: F32) -> F32:
    """X (h, w, k) -> (h, w) float32: centred X projected on its first principal component, signed like `orient`."""
    h, w, k = X.shape
    M = np.nan_to_num(X.reshape(h * w, k).astype(np.float64), nan=0.0)  # the reference zeroes NaNs too
    M = M - M.mean(axis=0)
    if not np.any(M):
        return np.zeros((h, w), np.float32)
    _, _, vt = np.linalg.svd(M, full_matrices=False)
    projection = M @ vt[0]  # (h*w,)
    signal = orient.reshape(-1).astype(np.float64)
    if float(projection @ (signal - signal.mean())) < 0:
        projection = -projection
    return projection.reshape(h, w).astype(np.float32)
