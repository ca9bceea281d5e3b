"""edge-explainer's on-device runtime: class scores and exact Grad-CAM from a TFLite model, without TensorFlow."""

from edge.errors import BundleError, EdgeError
from edge.explain.bundle import Manifest
from edge.explain.explainer import Explainer, Explanation

__version__ = "0.1.0"

__all__ = ["BundleError", "EdgeError", "Explainer", "Explanation", "Manifest", "__version__"]
