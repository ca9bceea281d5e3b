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
from edge.explain.head_ops import F32

_LOGGER = logging.getLogger(__name__)

RUNTIMES = {"ai_edge_litert": "ai_edge_litert.interpreter", "tflite_runtime": "tflite_runtime.interpreter"}
AUTO_THREADS = "auto"
MAX_THREADS = 64  # the one bound on a thread count: the API, the config and the CLI all check it here


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask: taskset, systemd's CPUAffinity=, a container's cpuset)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def resolve_threads(num_threads: int | str | None) -> int | None:
    """The TFLite thread count for a num_threads argument: "auto" = every CPU this process may use (the rule measured
    in docs/device.md), an int from 1 to MAX_THREADS as given, None = the runtime's own default (one thread in today's
    runtimes). Anything else is the caller's mistake: TypeError or ValueError naming num_threads."""
    wanted = f"an int from 1 to {MAX_THREADS}, {AUTO_THREADS!r} or None"
    if num_threads is None:
        return None
    if isinstance(num_threads, str):
        if num_threads == AUTO_THREADS:
            return available_cpus()
        raise ValueError(f"num_threads must be {wanted}, got {num_threads!r}")
    if isinstance(num_threads, bool) or not isinstance(num_threads, int | np.integer):
        raise TypeError(f"num_threads must be {wanted}, got {num_threads!r} ({type(num_threads).__name__})")
    if not 1 <= num_threads <= MAX_THREADS:
        raise ValueError(f"num_threads must be {wanted}, got {num_threads}")
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


class FeatureInterpreter:
    """features.tflite on a TFLite interpreter: model input (h_in, w_in, c) float32 -> A (h, w, k) float32, quantised
    or not inside. path: a file whose flatbuffer edge.explain.bundle_check.check_features passed (tflite-runtime maps
    the file unverified: a malformed one would crash the process). num_threads: a count resolve_threads() gave (None:
    the runtime's default)."""

    def __init__(self, path: Path, *, runtime: str = "auto", num_threads: int | None = None) -> None:
        self.num_threads = num_threads
        self.runtime, interpreter_cls = interpreter_class(runtime)
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
        self.input_shape = tuple(int(v) for v in self._input["shape"][1:])  # (h_in, w_in, c)
        self.output_shape = tuple(int(v) for v in self._output["shape"][1:])  # (h, w, k)
        self._in_quant = _quantization(self._input)
        self._out_quant = _quantization(self._output)
        self.input_dtype = np.dtype(self._input["dtype"])

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
