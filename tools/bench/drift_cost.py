"""python -m tools.bench.drift_cost [--model BUNDLE] [--frames N]: the drift monitor's cost per frame beside explain.

Explains N jittered sample frames (tools/data/drift_scenarios) at 640x480, learns a baseline from them, then times a
Grad-CAM explain call and a monitor update (frame statistics included on every 8th frame, as the service runs it) on
the same frames. Prints the CPU, both medians and means, and the monitor's share of explain.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from edge.explain.drift_monitor import DriftMonitor
from edge.explain.explainer import Explainer
from tools.bench.trunk_batch import cpu_name
from tools.data.drift_scenarios import load_images, scenario
from tools.evaluate.drift import learn

REPO = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.drift_cost", description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=REPO / "models" / "fruit")
    parser.add_argument("--images", type=Path, default=REPO / "samples")
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--threads", default="auto")
    args = parser.parse_args(argv)
    threads = args.threads if args.threads == "auto" else int(args.threads)
    explainer = Explainer.load(args.model, num_threads=threads)
    images = load_images(args.images)
    frames = [np.asarray(cv2.resize(f, (640, 480)), np.uint8)  # (480, 640, 3) uint8: the service's default capture
              for f in scenario(images, "normal", args.frames, 0, seed=5)]
    monitor = DriftMonitor(learn(explainer, images, 300, seed=1))
    explain_ms, update_ms = [], []
    for frame in frames:
        t0 = time.perf_counter()
        e = explainer.explain(frame)
        t1 = time.perf_counter()
        monitor.update(e.class_index, e.cam, frame)
        t2 = time.perf_counter()
        explain_ms.append((t1 - t0) * 1e3)
        update_ms.append((t2 - t1) * 1e3)
    print(f"CPU: {cpu_name()}; {args.model.name}, {args.threads} threads, {len(frames)} frames of 640x480")
    for name, ms in (("explain (gradcam)", explain_ms), ("drift monitor update", update_ms)):
        print(f"{name:22s} median {statistics.median(ms):8.4f} ms  mean {statistics.fmean(ms):8.4f} ms")
    share = statistics.fmean(update_ms) / statistics.fmean(explain_ms)
    print(f"monitor / explain (means): {100 * share:.2f} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
