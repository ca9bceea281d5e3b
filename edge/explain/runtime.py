"""The TFLite half of the model: one interpreter, loaded once, that maps a model input to the activations A.

ai-edge-litert (LiteRT, the maintained runtime, and the only one for Python >= 3.12) is tried first, then
tflite-runtime 2.14 (Raspberry Pi OS Bookworm, Python 3.11), the way frigate's CPU detector falls back.
"""

from __future__ import annotations

import importlib
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import BundleError, RuntimeNotFoundError
from edge.explain.bundle import Manifest
from edge.explain.bundle_check import check_features
from edge.explain.head_ops import F32

_LOGGER = logging.getLogger(__name__)

RUNTIMES = {"ai_edge_litert": "ai_edge_litert.interpreter", "tflite_runtime": "tflite_runtime.interpreter"}
AUTO_THREADS = "auto"


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask: taskset, systemd's CPUAffinity=, a container's cpuset)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def resolve_threads(num_threads: int | str | None) -> int | None:
    """The TFLite thread count for a num_threads argument: "auto" = every CPU this process may use (the rule measured
    in docs/device.md), an int >= 1 as given, None = the runtime's own default (one thread in today's runtimes).
    Anything else is the caller's mistake: TypeError or ValueError naming num_threads."""
    if num_threads is None:
        return None
    if isinstance(num_threads, str):
        if num_threads == AUTO_THREADS:
            return available_cpus()
        raise ValueError(f"num_threads must be an int >= 1, {AUTO_THREADS!r} or None, got {num_threads!r}")
    if isinstance(num_threads, bool) or not isinstance(num_threads, int | np.integer):
        raise TypeError(f"num_threads must be an int >= 1, {AUTO_THREADS!r} or None, got {num_threads!r} "
                        f"({type(num_threads).__name__})")
    if num_threads < 1:
        raise ValueError(f"num_threads must be an int >= 1, {AUTO_THREADS!r} or None, got {num_threads}")
    return int(num_threads)


def interpreter_class(runtime: str = "auto") -> tuple[str, Any]:
    """The Interpreter class of the requested runtime ('auto': the first importable one) and its name."""
    if runtime != "auto" and runtime not in RUNTIMES:
        raise RuntimeNotFoundError(f"unknown TFLite runtime {runtime!r}; choose auto, {', '.join(RUNTIMES)}")
    names = list(RUNTIMES) if runtime == "auto" else [runtime]
    failures = []
    for name in names:
        try:
            module = importlib.import_module(RUNTIMES[name])
        except ImportError as e:
            failures.append(f"{name}: {e}")
            continue
        return name, module.Interpreter
    raise RuntimeNotFoundError(
        "no TFLite runtime could be imported (" + "; ".join(failures) + "); "
        "install one with `pip install -r requirements-pi.txt`"
    )


class FeatureModel:
    """features.tflite: model input (h_in, w_in, c) float32 -> A (h, w, k) float32, quantised or not inside."""

    def __init__(
        self, path: Path, manifest: Manifest, *, runtime: str = "auto", num_threads: int | str | None = AUTO_THREADS
    ) -> None:
        self.num_threads = resolve_threads(num_threads)  # before the file: an argument error is not a bundle error
        self.runtime, interpreter_cls = interpreter_class(runtime)
        check_features(path)  # tflite-runtime maps the file unverified: a malformed one would crash the process
        try:
            self._interpreter = interpreter_cls(model_path=str(path), num_threads=self.num_threads)
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise BundleError(path, f"not a loadable TFLite model ({e})") from e
        inputs = self._interpreter.get_input_details()
        outputs = self._interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise BundleError(path, f"has {len(inputs)} inputs and {len(outputs)} outputs; expected one of each")
        self._input, self._output = inputs[0], outputs[0]
        self._check_shapes(path, manifest)
        self._in_quant = _quantization(self._input)
        self._out_quant = _quantization(self._output)
        self.input_dtype = np.dtype(self._input["dtype"])

    def _check_shapes(self, path: Path, manifest: Manifest) -> None:
        in_shape = tuple(int(v) for v in self._input["shape"][1:])
        out_shape = tuple(int(v) for v in self._output["shape"][1:])
        if in_shape != manifest.input_shape:
            raise BundleError(path, f"takes input {in_shape} but the manifest says {manifest.input_shape}")
        if out_shape != manifest.feature_shape:
            raise BundleError(path, f"gives features {out_shape} but the manifest says {manifest.feature_shape}")

    def __call__(self, x: F32) -> F32:
        """x: (h_in, w_in, c) float32 model input -> A: (h, w, k) float32 (a fresh array, safe to keep)."""
        if self._in_quant is not None:
            scale, zero_point = self._in_quant
            info = np.iinfo(self.input_dtype)
            q = np.clip(np.round(x / scale) + zero_point, info.min, info.max).astype(self.input_dtype)
            self._interpreter.set_tensor(self._input["index"], q[None])
        else:
            self._interpreter.set_tensor(self._input["index"], x[None].astype(np.float32, copy=False))
        self._interpreter.invoke()
        out = self._interpreter.get_tensor(self._output["index"])[0]  # get_tensor already returns a copy
        if self._out_quant is not None:
            scale, zero_point = self._out_quant
            return ((out.astype(np.float32) - zero_point) * scale).astype(np.float32)
        return np.asarray(out, dtype=np.float32)


def _quantization(details: dict[str, Any]) -> tuple[float, int] | None:
    if np.dtype(details["dtype"]) == np.float32:
        return None
    scale, zero_point = details["quantization"]
    return float(scale), int(zero_point)
