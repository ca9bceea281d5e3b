"""python -m tools.bench.faithfulness_cost [BUNDLE...]: what each faithfulness score costs, beside classify-only.

For each bundle (default: models/fruit and the bench's MobileNetV2-224 bundle), at 1 thread and at every CPU: the
median ms of classify-only and of a Grad-CAM explain call, then each score's feature-model passes and median ms on one
frame: the confidence scores (confidence change, drop, increase: 2 passes), deletion + insertion (39 more), and ROAD
most- and least-relevant-first (3 passes and two sparse solves; workstation only). First, the service loop's frame
rate with the default [faithfulness] worker on against off, on the first bundle. Prints the CPU first.
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edge import Explainer
from edge.explain.faithfulness import FaithfulnessScorer, anchor_map
from edge.explain.trunk_passes import TrunkPasses
from edge.service.faithfulness_worker import FaithfulnessConfig, FaithfulnessWorker
from edge.service.loop import Explaining, Loop, LoopConfig
from edge.sources.base import SourceConfig
from edge.sources.synthetic import SyntheticSource
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


class _NoSink:
    name = "none"

    def open(self) -> None: ...

    def handle(self, result: object) -> None: ...

    def close(self) -> None: ...


def loop_fps(bundle: Path, frames: int, scoring: FaithfulnessConfig | None) -> tuple[float, dict[str, float]]:
    """The service loop's explained frames per second on unpaced synthetic 640x480 frames, no outputs, with or without
    the [faithfulness] worker; and the worker's scored / skipped counts."""
    explainer = Explainer.load(bundle)
    source = SyntheticSource(SourceConfig())
    source.open()
    worker = FaithfulnessWorker(explainer, scoring) if scoring is not None else None
    loop = Loop(explainer, source, [_NoSink()], config=LoopConfig(max_frames=frames),
                explaining=Explaining(faithfulness=worker), stop=threading.Event())
    t0, cpu0 = time.perf_counter(), time.process_time()
    stats = loop.run()
    fps = stats.frames / (time.perf_counter() - t0)
    counts: dict[str, float] = {"scored": worker.scored, "skipped": worker.skipped} if worker is not None else {}
    # CPU ms per frame: the whole process's without scoring, the worker thread's own with it (load-independent)
    counts["cpu_ms_per_frame"] = 1e3 * (worker.cpu_s if worker is not None else time.process_time() - cpu0) / max(
        1, stats.frames)
    if worker is not None:
        worker.close()
    source.close()
    return fps, counts


def print_loop_fps(bundle: Path, frames: int, rounds: int) -> None:
    """Alternating rounds off / on (default [faithfulness] rate), the median fps of each and their ratio."""
    off: list[float] = []
    on: list[float] = []
    loop_cpu: list[float] = []
    scoring_cpu: list[float] = []
    counts: dict[str, float] = {}
    for _ in range(rounds):
        fps, counts = loop_fps(bundle, frames, None)
        off.append(fps)
        loop_cpu.append(counts["cpu_ms_per_frame"])
        fps, counts = loop_fps(bundle, frames, FaithfulnessConfig(enabled=True))
        on.append(fps)
        scoring_cpu.append(counts["cpu_ms_per_frame"])
    off_fps, on_fps = statistics.median(off), statistics.median(on)
    loop_ms, scoring_ms = statistics.median(loop_cpu), statistics.median(scoring_cpu)
    print(f"\nloop fps, {bundle.name}, {frames} unpaced synthetic frames x {rounds} rounds: scoring off "
          f"{off_fps:.1f}, on (every_n={FaithfulnessConfig().every_n}, curves) {on_fps:.1f}: "
          f"{100 * (1 - on_fps / off_fps):+.1f}% (rounds off {min(off):.0f}-{max(off):.0f}, on {min(on):.0f}-"
          f"{max(on):.0f}); CPU per frame: loop {loop_ms:.2f} ms, scoring adds {scoring_ms:.3f} ms "
          f"({100 * scoring_ms / loop_ms:.1f}%); last round scored {counts['scored']:.0f}, skipped "
          f"{counts['skipped']:.0f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.faithfulness_cost", description=__doc__)
    parser.add_argument("bundles", nargs="*", type=Path)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--loop-frames", type=int, default=3000,
                        help="frames per loop-fps round (scoring off against on; 0 = skip)")
    parser.add_argument("--loop-rounds", type=int, default=3)
    parser.add_argument("--skip-scores", action="store_true", help="only the loop fps")
    args = parser.parse_args(argv)
    bundles = args.bundles
    if not bundles:
        from tools.bench.bundles import mobilenet_bundle

        bundles = [REPO / "models" / "fruit", mobilenet_bundle(REPO / "build" / "bench")[0]]
    print(f"CPU: {cpu_name()}, {len(os.sched_getaffinity(0))} CPUs")
    if args.loop_frames:
        print_loop_fps(bundles[0], args.loop_frames, args.loop_rounds)
    for bundle in bundles if not args.skip_scores else []:
        for threads in (1, "auto"):
            print(f"\n{bundle.name}, threads={threads}")
            print(f"  {'what':<34}{'passes':>7}{'ms':>10}")
            for what, n, ms in bench_bundle(bundle, threads, args.rounds):
                print(f"  {what:<34}{n:>7}{ms:>10.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
