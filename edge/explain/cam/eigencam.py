"""Eigen-CAM (Muhammad & Yeasin, "Eigen-CAM: Class Activation Map using Principal Components", arXiv 2008.00299):
the activations projected on their first principal component; no gradient, so the same map for every class.

As in pytorch-grad-cam, the (h*w, k) activations are centred per channel before the SVD. A singular vector's sign is
arbitrary, so it is fixed here: the map is made to correlate positively with the channel sum of A (where the layer
is active), which is stable from frame to frame and across NumPy/LAPACK builds.
"""

from __future__ import annotations

import numpy as np

from edge.explain.cam.base import CamContext
from edge.explain.head_ops import F32


class EigenCAM:
    name = "eigencam"

    def raw(self, ctx: CamContext) -> F32:
        h, w, k = ctx.A.shape
        X = ctx.A.reshape(h * w, k).astype(np.float64)
        X = X - X.mean(axis=0)
        if not np.any(X):
            return np.zeros((h, w), np.float32)
        _, _, vt = np.linalg.svd(X, full_matrices=False)
        projection = X @ vt[0]  # (h*w,)
        activity = ctx.A.sum(axis=-1).reshape(-1)
        if float(projection @ (activity - activity.mean())) < 0:
            projection = -projection
        return projection.reshape(h, w).astype(np.float32)
