"""python -m tools.bench.drift_cost [--model BUNDLE] [--pairs N]: what drift monitoring costs the loop per frame.

Explains jittered sample frames (tools/data/drift_scenarios) at 640x480 as the service loop does, in interleaved pairs
of rounds with the [drift] monitor on and off (on/off, then off/on: a load that changes slowly cancels). With it on,
each frame is handed to a running DriftWorker exactly as the loop hands it (offer, then status) and that hand-off is
timed. Prints the CPU and the load; explain's median and mean; the loop's hand-off as % of explain (median and mean);
the median over pairs of the loop's extra time per frame with the monitor's thread running (what it takes from the
loop, contention included); the monitor thread's own CPU time per frame (DriftWorker.busy_s), which the loop does
not wait for; and the same frames replayed through a DriftMonitor alone, in batches of the size the thread took them
(the monitor's own work, without a core shared with the loop).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edge.explain.drift_baseline import Baseline
from edge.explain.drift_monitor import DriftMonitor, Frame
from edge.explain.explainer import Explainer
from edge.service.drift import DriftConfig, DriftWorker
from tools.bench.trunk_batch import cpu_name
from tools.data.drift_scenarios import U8, load_images, scenario
from tools.evaluate.drift import learn

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Times:
    """Per-frame ms over all rounds of one mode."""

    explain: list[float] = field(default_factory=list)
    handoff: list[float] = field(default_factory=list)  # offer + status, on the loop's thread
    loop: list[float] = field(default_factory=list)  # explain + hand-off
    offered: list[Frame] = field(default_factory=list)  # what the monitor was handed, for the replay


def loop_round(explainer: Explainer, frames: list[U8], worker: DriftWorker | None, times: Times) -> float:
    """The loop's explain and drift hand-off on each frame; returns this round's median loop ms per frame."""
    loop = []
    for frame in frames:
        t0 = time.perf_counter()
        ex = explainer.explain(frame)
        t1 = time.perf_counter()
        if worker is not None:  # as edge.service.loop does
            worker.offer(ex, frame)
            worker.status()
            times.offered.append((ex.class_index, ex.cam, frame))
        t2 = time.perf_counter()
        times.explain.append((t1 - t0) * 1e3)
        times.handoff.append((t2 - t1) * 1e3)
        loop.append((t2 - t0) * 1e3)
    times.loop += loop
    time.sleep(0.02)  # the monitor's queue empties before the next round
    return statistics.median(loop)


def replay_ms(baseline: Baseline, frames: list[Frame], batch: int) -> float:
    """The monitor's CPU ms per frame for the same frames in batches of the size the service's thread took them,
    with nothing running beside it (its own work, without sharing a core with the loop)."""
    monitor = DriftMonitor(baseline)
    started = time.thread_time()
    for start in range(0, len(frames), batch):
        monitor.update_many(frames[start:start + batch])
    return 1e3 * (time.thread_time() - started) / max(1, len(frames))


def pct(part: list[float], whole: list[float]) -> str:
    return (f"{100 * statistics.median(part) / statistics.median(whole):.2f} % (medians), "
            f"{100 * statistics.fmean(part) / statistics.fmean(whole):.2f} % (means)")


def line(name: str, ms: list[float]) -> str:
    return f"{name:34s} median {statistics.median(ms):8.4f} ms  mean {statistics.fmean(ms):8.4f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.drift_cost", description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=REPO / "models" / "fruit")
    parser.add_argument("--images", type=Path, default=REPO / "samples")
    parser.add_argument("--pairs", type=int, default=20, help="on/off pairs of rounds")
    parser.add_argument("--round", type=int, default=100, help="frames per round")
    parser.add_argument("--threads", default="auto")
    args = parser.parse_args(argv)
    explainer = Explainer.load(args.model, num_threads=args.threads if args.threads == "auto" else int(args.threads))
    images = load_images(args.images)
    frames = [np.asarray(cv2.resize(f, (640, 480)), np.uint8)  # (480, 640, 3) uint8: the service's default capture
              for f in scenario(images, "normal", args.round, 0, seed=5)]
    baseline = learn(explainer, images, 300, seed=1)
    on, off, extra = Times(), Times(), []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "baseline.npz"
        baseline.save(path)
        worker = DriftWorker(DriftConfig(enabled=True, baseline=str(path)), model_sha256=baseline.model_sha256,
                             class_names=baseline.class_names, grid=baseline.grid)
        worker.start()
        loop_round(explainer, frames, worker, Times())  # warm-up: the monitor sees every class
        for i in range(args.pairs):
            order = (True, False) if i % 2 == 0 else (False, True)
            medians = {mode: loop_round(explainer, frames, worker if mode else None, on if mode else off)
                       for mode in order}
            extra.append(medians[True] / medians[False] - 1.0)
        worker.close()
    thread_ms = 1e3 * worker.busy_s / max(1, worker.handled)  # CPU time per frame, batches as the service runs them
    batch = max(1, round(worker.handled / max(1, worker.batches)))
    alone_ms = replay_ms(baseline, on.offered, batch)
    print(f"CPU: {cpu_name()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; {args.model.name}, "
          f"{args.threads} threads; {args.pairs} on/off pairs of {args.round} frames of 640x480")
    print(line("explain (gradcam), monitor off", off.explain))
    print(line("explain (gradcam), monitor on", on.explain))
    print(line("loop's hand-off (offer + status)", on.handoff))
    print(f"{'monitor thread (CPU time)':34s} {thread_ms:8.4f} ms per frame over {worker.handled} frames "
          f"in {worker.batches} batches")
    print(f"{'the same, replayed alone':34s} {alone_ms:8.4f} ms per frame in batches of {batch}")
    print(f"loop's cost of drift monitoring per frame (the hand-off) / explain: {pct(on.handoff, on.explain)}")
    q1, q3 = (100 * float(np.quantile(extra, q)) for q in (0.25, 0.75))
    print(f"loop per frame, monitor on vs off: {100 * statistics.median(extra):+.2f} % (median of {len(extra)} pairs' "
          f"median ratios; quartiles {q1:+.2f} % .. {q3:+.2f} %)")
    print(f"monitor thread / explain (not waited for): {100 * thread_ms / statistics.median(on.explain):.2f} % "
          f"(of the median), {100 * thread_ms / statistics.fmean(on.explain):.2f} % (of the mean)")
    print(f"monitor's work replayed alone / explain: {100 * alone_ms / statistics.median(on.explain):.2f} % "
          f"(of the median), {100 * alone_ms / statistics.fmean(on.explain):.2f} % (of the mean)")
    print(f"frames the monitor skipped (queue full): {worker.dropped}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
