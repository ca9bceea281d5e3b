"""python -m tools.bench.faithfulness_cost [BUNDLE...]: what each faithfulness score costs, beside classify-only.

For each bundle (default: models/fruit and the bench's MobileNetV2-224 bundle), at 1 thread and at every CPU: the
median ms of classify-only and of a Grad-CAM explain call, then each score's feature-model passes and median ms on one
frame: the confidence scores (confidence change, drop, increase: 2 passes), deletion + insertion (39 more), and ROAD
most- and least-relevant-first (3 passes and two sparse solves; workstation only). Prints the CPU first.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edge import Explainer
from edge.explain.faithfulness import FaithfulnessScorer, anchor_map
from edge.explain.trunk_passes import TrunkPasses
from tools.bench.trunk_batch import cpu_name
from tools.evaluate.road import road_scores

REPO = Path(__file__).resolve().parents[2]


def median_ms(fn: Callable[[], object], rounds: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def bench_bundle(bundle: Path, threads: int | str, rounds: int) -> list[tuple[str, int, float]]:
    """(what, feature-model passes, median ms) rows for one bundle and thread count."""
    explainer = Explainer.load(bundle, num_threads=threads)
    h, w, _ = explainer.manifest.input_shape
    frame = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)  # (h, w, 3) uint8
    x = explainer.preprocess(frame)
    e = explainer.explain_input(x)
    passes = TrunkPasses.for_explainer(explainer, num_threads=threads)
    confidence = FaithfulnessScorer(passes, curves=False)
    full = FaithfulnessScorer(passes)
    cam = anchor_map(e.cam_raw, (h, w))
    rows = [("classify-only", 1, median_ms(lambda: explainer.classify(frame), rounds)),
            ("explain (gradcam)", 1, median_ms(lambda: explainer.explain(frame), rounds))]
    rows.append(("confidence change/drop/increase", 2,
                 median_ms(lambda: confidence(x, e.cam_raw, e.class_index), rounds)))
    all_ms = median_ms(lambda: full(x, e.cam_raw, e.class_index), max(1, rounds // 3))
    rows.append(("deletion + insertion AUC", full(x, e.cam_raw, e.class_index).passes - 2, all_ms - rows[-1][2]))
    rows.append(("all device scores", full(x, e.cam_raw, e.class_index).passes, all_ms))
    rows.append(("ROAD MoRF + LeRF (workstation)", 3,
                 median_ms(lambda: road_scores(full, x, cam, e.class_index), max(1, rounds // 3))))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.faithfulness_cost", description=__doc__)
    parser.add_argument("bundles", nargs="*", type=Path)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args(argv)
    bundles = args.bundles
    if not bundles:
        from tools.bench.bundles import mobilenet_bundle

        bundles = [REPO / "models" / "fruit", mobilenet_bundle(REPO / "build" / "bench")[0]]
    print(f"CPU: {cpu_name()}, {len(os.sched_getaffinity(0))} CPUs")
    for bundle in bundles:
        for threads in (1, "auto"):
            print(f"\n{bundle.name}, threads={threads}")
            print(f"  {'what':<34}{'passes':>7}{'ms':>10}")
            for what, n, ms in bench_bundle(bundle, threads, args.rounds):
                print(f"  {what:<34}{n:>7}{ms:>10.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
