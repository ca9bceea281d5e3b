"""The exceptions edge-explainer raises; the CLI prints any EdgeError as one line."""

from __future__ import annotations

from pathlib import Path


class EdgeError(Exception):
    """Base class of every error a user can act on (bad bundle, bad config, bad input)."""


class BundleError(EdgeError):
    """A model bundle is missing, corrupt or inconsistent. The message names the file and the problem."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class RuntimeNotFoundError(EdgeError):
    """Neither TFLite runtime (ai-edge-litert, tflite-runtime) can be imported."""


class MethodError(EdgeError):
    """A CAM method is unknown, or not defined for this bundle's head."""


class InputError(EdgeError):
    """A frame or model input has a shape or dtype the explainer cannot use."""
