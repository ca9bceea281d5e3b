"""Many model inputs through the bundle's feature model and NumPy head: the passes perturbation methods pay for.

Faithfulness scores (deletion, insertion, confidence change, ROAD) and perturbation CAMs (Score-CAM and its kin) run
tens to thousands of perturbed copies of one model input through the model. TrunkPasses runs them on an interpreter of
its own (the explainer's stays untouched, so a background worker and the camera loop never share one), in batches of
`batch` inputs where the runtime accepts a resized input tensor, one by one otherwise. int8 feature models get the
perturbed inputs quantised exactly as FeatureModel quantises a frame's. Batch against one by one, measured on both
runtimes: docs/faithfulness.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from edge.errors import BundleError, InputError
from edge.explain import bundle as bundle_format
from edge.explain.bundle import Manifest
from edge.explain.head import Head
from edge.explain.head_ops import F32
from edge.explain.runtime import interpreter_class, resolve_threads

# The default batch per thread count: one by one at 1 thread (batching measured no faster on XNNPACK), 16 at more
# (tflite-runtime's threads then synchronise once per batch instead of once per input).
SINGLE_THREAD_BATCH = 1
MULTI_THREAD_BATCH = 16


@dataclass(slots=True)
class Outputs:
    """The head's answer for n inputs."""

    logits: F32  # (n, C) float32
    probabilities: F32  # (n, C) float32, the bundle's output activation (softmax, sigmoid or none)


class _Runtime(Protocol):
    runtime: str


class LoadedBundle(Protocol):
    """What TrunkPasses takes from a loaded explainer (structurally, so that this module needs no explainer)."""

    path: Path | None
    manifest: Manifest
    head: Head

    @property
    def features(self) -> _Runtime: ...


class TrunkPasses:
    """Runs (n, h_in, w_in, c) float32 model inputs through features.tflite and the head. Use for_explainer()."""

    def __init__(
        self,
        features_path: Path,
        manifest: Manifest,
        head: Head,
        *,
        runtime: str = "auto",
        num_threads: int | str | None = 1,
        batch: int | None = None,
    ) -> None:
        threads = resolve_threads(num_threads)
        if batch is not None and batch < 1:
            raise ValueError(f"batch must be an int >= 1 or None, got {batch}")
        self.manifest = manifest
        self.head = head
        self.passes = 0  # feature-model passes run so far (one per input), for the cost reports
        self.runtime, interpreter_cls = interpreter_class(runtime)
        try:
            self._interpreter = interpreter_cls(model_path=str(features_path), num_threads=threads)
        except (ValueError, RuntimeError) as e:
            raise BundleError(features_path, f"not a loadable TFLite model ({e})") from e
        wanted = batch or (SINGLE_THREAD_BATCH if (threads or 1) == 1 else MULTI_THREAD_BATCH)
        self.batch = self._allocate(wanted)
        # A short remainder (fewer than half a batch) runs one by one on a batch-1 interpreter, not padded.
        self._single = self._interpreter
        if self.batch > 1:
            self._single = interpreter_cls(model_path=str(features_path), num_threads=threads)
            self._single.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        self._in_quant = _quantization(self._input)
        self._out_quant = _quantization(self._output)

    @classmethod
    def for_explainer(
        cls, explainer: LoadedBundle, *, num_threads: int | str | None = 1, batch: int | None = None
    ) -> TrunkPasses:
        """A second interpreter on the explainer's bundle (same runtime), with the explainer's head."""
        if explainer.path is None:
            raise InputError("the explainer was not loaded from a bundle directory; TrunkPasses needs its path")
        return cls(explainer.path / bundle_format.FEATURES, explainer.manifest, explainer.head,
                   runtime=explainer.features.runtime, num_threads=num_threads, batch=batch)

    def _allocate(self, batch: int) -> int:
        """Resize the input tensor to `batch` inputs; a model that refuses (a reshape with a fixed batch) runs one by
        one. Returns the batch in effect."""
        index = self._interpreter.get_input_details()[0]["index"]
        if batch > 1:
            try:
                shape = [batch, *self.manifest.input_shape]
                self._interpreter.resize_tensor_input(index, shape, strict=False)
                self._interpreter.allocate_tensors()
                return batch
            except (ValueError, RuntimeError):
                self._interpreter.resize_tensor_input(index, [1, *self.manifest.input_shape], strict=False)
        self._interpreter.allocate_tensors()
        return 1

    def features(self, xs: F32) -> F32:
        """xs (n, h_in, w_in, c) float32 -> A (n, h, w, k) float32."""
        xs = np.asarray(xs, np.float32)
        if xs.ndim != 4 or xs.shape[1:] != self.manifest.input_shape:
            raise InputError(f"expected model inputs of shape (n, {', '.join(map(str, self.manifest.input_shape))}),"
                             f" got {xs.shape}")
        n = xs.shape[0]
        out = np.empty((n, *self.manifest.feature_shape), np.float32)  # (n, h, w, k) float32
        for start in range(0, n, self.batch):
            chunk = xs[start:start + self.batch]
            m = chunk.shape[0]
            if m == self.batch:
                out[start:start + m] = self._invoke(self._interpreter, chunk)
            elif 2 * m >= self.batch:  # a long remainder: padded, its padding's outputs dropped
                pad = np.zeros((self.batch - m, *chunk.shape[1:]), np.float32)
                out[start:start + m] = self._invoke(self._interpreter, np.concatenate([chunk, pad]))[:m]
            else:
                for i in range(m):
                    out[start + i] = self._invoke(self._single, chunk[i:i + 1])[0]
        self.passes += n
        return out

    def _invoke(self, interpreter: Any, chunk: F32) -> F32:
        """One invoke on (b, h_in, w_in, c) float32 -> (b, h, w, k) float32 (b: the interpreter's batch)."""
        if self._in_quant is not None:
            scale, zero_point = self._in_quant
            info = np.iinfo(self._input["dtype"])
            q = np.clip(np.round(chunk / scale) + zero_point, info.min, info.max).astype(self._input["dtype"])
            interpreter.set_tensor(self._input["index"], q)
        else:
            interpreter.set_tensor(self._input["index"], np.ascontiguousarray(chunk))
        interpreter.invoke()
        out = interpreter.get_tensor(self._output["index"])
        if self._out_quant is not None:
            scale, zero_point = self._out_quant
            return ((out.astype(np.float32) - zero_point) * scale).astype(np.float32)
        return np.asarray(out, np.float32)

    def __call__(self, xs: F32) -> Outputs:
        """xs (n, h_in, w_in, c) float32 -> the head's logits and probabilities, (n, C) each."""
        A = self.features(xs)
        logits = np.empty((len(A), self.head.num_classes), np.float32)  # (n, C) float32
        probabilities = np.empty_like(logits)
        for i, a in enumerate(A):
            hp = self.head.forward(a)
            logits[i], probabilities[i] = hp.logits, hp.probabilities
        return Outputs(logits, probabilities)

    def in_chunks(self, n: int, make: Callable[[int, int], F32], chunk: int = 64) -> Outputs:
        """The outputs of n inputs made `chunk` at a time by make(start, stop) -> (stop - start, h_in, w_in, c): for
        perturbation sets too large to hold at once (Score-CAM on 1280 channels)."""
        parts = [self(make(start, min(start + chunk, n))) for start in range(0, n, chunk)]
        if not parts:
            empty = np.zeros((0, self.head.num_classes), np.float32)
            return Outputs(empty, empty.copy())
        return Outputs(np.concatenate([p.logits for p in parts]), np.concatenate([p.probabilities for p in parts]))


def _quantization(details: dict[str, Any]) -> tuple[float, int] | None:
    if np.dtype(details["dtype"]) == np.float32:
        return None
    scale, zero_point = details["quantization"]
    return float(scale), int(zero_point)
