"""KPCA-CAM (Karmani et al., "KPCA-CAM: Visual Explainability of Deep Computer Vision Models using Kernel PCA",
arXiv 2410.00267, section 3; pytorch-grad-cam's KPCA_CAM): Eigen-CAM with kernel PCA. The centred (h*w, k) activations'
kernel matrix K_ij = tanh(gamma x_i.x_j + 1) (the sigmoid kernel, gamma = 1/k) is double-centred; the map is its top
eigenvector times the square root of its eigenvalue, as scikit-learn's KernelPCA(n_components=1).fit_transform gives.
No gradient: the same map for every class.

scikit-learn decides the eigenvector's sign deterministically (svd_flip: the largest-magnitude entry is positive), so
this map's sign is the reference's. Beyond 200 positions scikit-learn switches to ARPACK started from a random vector
(its random_state, None in pytorch-grad-cam): an iterative solver that converges to this same eigenvector, to its
tolerance; here it is always the exact dense eigendecomposition.
"""

from __future__ import annotations

import numpy as np

from edge.explain.cam.base import CamContext
from edge.explain.head_ops import F32


def kernel_pca_projection(X: F32, gamma: float | None = None) -> F32:
    """X (n, d) -> (n,) float64: the first kernel principal component (sigmoid kernel, coef0 = 1) of X's rows."""
    n, d = X.shape
    M = X.astype(np.float64)
    K = np.tanh(M @ M.T * (1.0 / d if gamma is None else gamma) + 1.0)  # (n, n)
    row_means = K.mean(axis=0)
    K = K - row_means[None, :] - row_means[:, None] + row_means.mean()  # KernelCenterer
    eigenvalues, eigenvectors = np.linalg.eigh(K)
    value, vector = float(eigenvalues[-1]), eigenvectors[:, -1]
    if not value > 0.0:  # scikit-learn clips a non-positive top eigenvalue to 0: an all-zero projection
        return np.zeros(n, np.float64)
    vector = vector * np.sign(vector[np.argmax(np.abs(vector))])  # svd_flip
    return vector * np.sqrt(value)


class KPCACAM:
    name = "kpcacam"

    def __init__(self, gamma: float | None = None) -> None:
        self.gamma = gamma

    def raw(self, ctx: CamContext) -> F32:
        h, w, k = ctx.A.shape
        X = np.nan_to_num(ctx.A.reshape(h * w, k), nan=0.0)
        X = X - X.mean(axis=0)  # centred per channel before the kernel, as the reference does
        return kernel_pca_projection(X, self.gamma).reshape(h, w).astype(np.float32)
