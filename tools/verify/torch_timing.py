"""python -m tools.verify.torch_timing MODEL --weights W --bundle B: explain ms of a bundle on the edge side vs
PyTorch eager + pytorch-grad-cam's GradCAM on the same CPU, timed call by call in turn in one process (medians).

Both explain the top class of one model input (random, NHWC for the bundle, NCHW for PyTorch): the edge side's
Explainer.explain_input (TFLite features + NumPy head, Grad-CAM) against `GradCAM(model, [layer])(x)` (forward,
backward, map, ReLU and resize to the input), the way its README uses it. A command that prints figures, not a test.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from edge import Explainer
from tools.export.torch import model_spec


def _timed(fn: Callable[[], object], times: list[float]) -> None:
    start = time.perf_counter()
    fn()
    times.append((time.perf_counter() - start) * 1000)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.verify.torch_timing", description=__doc__.splitlines()[0])
    p.add_argument("model", help="package.module:callable or file.py:callable")
    p.add_argument("--weights", type=Path)
    p.add_argument("--bundle", type=Path, required=True)
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--threads", type=int, default=1,
                   help="threads for both sides: TFLite's num_threads and torch.set_num_threads (default 1)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    ex = Explainer.load(args.bundle, num_threads=args.threads)
    net = model_spec.load(args.model, args.weights)
    layer = net.get_submodule(ex.manifest.target_layer)
    h, w, c = ex.manifest.input_shape
    x = np.random.default_rng(0).standard_normal((h, w, c)).astype(np.float32)  # a model input, NHWC
    x_t = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]
    top = ex.explain_input(x).class_index
    cam = GradCAM(model=net, target_layers=[layer])
    targets = [ClassifierOutputTarget(top)]
    edge_ms: list[float] = []
    torch_ms: list[float] = []
    for _ in range(2):  # warm-up
        ex.explain_input(x)
        cam(input_tensor=x_t, targets=targets)
    for _ in range(args.rounds):
        _timed(lambda: ex.explain_input(x), edge_ms)
        _timed(lambda: cam(input_tensor=x_t, targets=targets), torch_ms)
    e, t = statistics.median(edge_ms), statistics.median(torch_ms)
    print(f"{args.model} at {h}x{w}, target {ex.manifest.target_layer}, threads {args.threads} (both): "
          f"edge Grad-CAM {e:.1f} ms (runtime {ex.features.runtime}), PyTorch eager + pytorch-grad-cam {t:.1f} ms, "
          f"ratio {t / e:.2f}x ({args.rounds} rounds, medians)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
