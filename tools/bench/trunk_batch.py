"""python -m tools.bench.trunk_batch BUNDLE... : TrunkPasses batched against one by one, per runtime and thread count.

Prints ms per input (the median of --rounds) for each batch size, so that edge/explain/trunk_passes.py's default
batch can be checked on the machine at hand. The CPU is printed first: figures mean nothing without it.
"""

from __future__ import annotations

import argparse
import importlib.util
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from edge import Explainer
from edge.explain.trunk_passes import TrunkPasses

RUNTIMES = ("ai_edge_litert", "tflite_runtime")


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def ms_per_input(passes: TrunkPasses, xs: np.ndarray, rounds: int) -> float:
    passes(xs)  # warm-up
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        passes(xs)
        times.append((time.perf_counter() - t) * 1e3 / len(xs))
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.trunk_batch", description=__doc__)
    parser.add_argument("bundles", nargs="+", type=Path)
    parser.add_argument("--inputs", type=int, default=64, help="inputs per round (default 64)")
    parser.add_argument("--batches", default="1,4,16,64", help="batch sizes (default 1,4,16,64)")
    parser.add_argument("--threads", default="1,auto", help="thread counts (default 1,auto)")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    print(f"CPU: {cpu_name()}, {len(__import__('os').sched_getaffinity(0))} CPUs")
    batches = [int(b) for b in args.batches.split(",")]
    for bundle in args.bundles:
        for runtime in (r for r in RUNTIMES if importlib.util.find_spec(r) is not None):
            explainer = Explainer.load(bundle, runtime=runtime, num_threads=1)
            xs = np.random.default_rng(0).random((args.inputs, *explainer.manifest.input_shape), dtype=np.float32)
            for threads in args.threads.split(","):
                n: int | str = threads if threads == "auto" else int(threads)
                row = []
                for b in batches:
                    passes = TrunkPasses.for_explainer(explainer, num_threads=n, batch=b)
                    row.append(f"batch {passes.batch}: {ms_per_input(passes, xs, args.rounds):.2f}")
                print(f"{bundle.name} {runtime} threads={threads}: " + ", ".join(row) + " ms/input")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
