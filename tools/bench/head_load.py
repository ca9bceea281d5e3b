"""python -m tools.bench.head_load BUNDLE [BUNDLE ...]: what a big head costs the device at start-up.

For each bundle, in a fresh TensorFlow-free process (as on the Pi): head.npz size and storage dtype, Explainer.load
time, the process's peak RSS after loading and after explaining, and the median head time of 5 explanations. Meant for
the heads that decide whether a model fits a Pi (VGG16's 25088x4096 fc1: 411 MB float32, 205 MB float16), next to
a small one for contrast. Figures are printed, nothing is judged.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def _measure(bundle: Path, threads: int) -> dict[str, Any]:
    """Runs in the child process."""
    import numpy as np

    from edge import Explainer

    def peak_mb() -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    before = peak_mb()
    t0 = time.perf_counter()
    ex = Explainer.load(bundle, num_threads=threads)
    load_s = time.perf_counter() - t0
    after_load = peak_mb()
    x = np.zeros(ex.manifest.input_shape, np.float32)
    ex.explain_input(x)  # warm-up
    runs = [ex.explain_input(x) for _ in range(5)]
    r = sorted(runs, key=lambda e: e.timings["head"])[2]  # the median head time
    return {
        "bundle": str(bundle), "head_dtype": ex.manifest.head_dtype,
        "head_mb": (bundle / "head.npz").stat().st_size / 1e6, "load_s": load_s,
        "rss_mb_before": before, "rss_mb_loaded": after_load, "rss_mb_explained": peak_mb(),
        "head_ms": r.timings["head"], "cam_ms": r.timings["cam"],
    }


def measure(bundle: Path, threads: int = 1) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-m", "tools.bench.head_load", "--child", str(bundle),
                           "--threads", str(threads)], capture_output=True, text=True, env=env, cwd=REPO, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{bundle}: {(proc.stderr.strip().splitlines() or ['failed'])[-1]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.bench.head_load", description=__doc__.splitlines()[0])
    p.add_argument("bundles", type=Path, nargs="+")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--json", action="store_true", help="one JSON object per bundle")
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(_measure(args.bundles[0], args.threads)))
        return 0
    print(f"{'bundle':40s} {'head':>8s} {'head.npz MB':>11s} {'load s':>7s} {'RSS MB loaded':>13s} "
          f"{'explained':>9s} {'head ms':>8s}")
    for bundle in args.bundles:
        m = measure(bundle, args.threads)
        if args.json:
            print(json.dumps(m))
            continue
        print(f"{bundle.name:40s} {m['head_dtype']:>8s} {m['head_mb']:11.1f} {m['load_s']:7.2f} "
              f"{m['rss_mb_loaded']:13.0f} {m['rss_mb_explained']:9.0f} {m['head_ms']:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
