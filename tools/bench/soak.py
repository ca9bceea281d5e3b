"""Soak run: `python -m edge run` on synthetic frames, watched from outside for growth in memory, files and threads.

    python -m tools.bench.soak [--frames 20000] [--model models/fruit] [--json PATH] [-- EXTRA edge run ARGS]

Samples the child's /proc/PID/status (VmRSS, Threads) and /proc/PID/fd every 0.2 s while it runs with the disk log on
(logging every frame, so the log path is soaked too). Growth is measured from the end of warm-up (the first fifth of the
frames) to the end. Linux only (/proc).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]  # the checkout: tools/<job>/<module>.py


@dataclass
class Sample:
    frame: int
    rss_mb: float
    fds: int
    threads: int


@dataclass
class SoakReport:
    frames: int
    seconds: float
    exit_code: int
    warm: Sample | None = None
    end: Sample | None = None
    peak_rss_after_warmup_mb: float = 0.0
    rss_growth_mb: float = 0.0
    fd_range_after_warmup: tuple[int, int] = (0, 0)
    thread_range_after_warmup: tuple[int, int] = (0, 0)
    samples: list[Sample] = field(default_factory=list)


def _sample(pid: int, frame: int) -> Sample | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except (FileNotFoundError, ProcessLookupError):
        return None
    values = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return Sample(frame, int(values["VmRSS"].split()[0]) / 1024, fds, int(values["Threads"]))


def soak(frames: int, model: Path, extra: list[str]) -> SoakReport:
    with tempfile.TemporaryDirectory(prefix="soak-") as log_dir:
        args = [sys.executable, "-m", "edge", "run", "--model", str(model), "--source", "synthetic", "--no-display",
                "--max-frames", str(frames), "--stdout", "--log-dir", log_dir, "--log-every-frame", *extra]
        env = dict(os.environ, PYTHONPATH=str(REPO))
        start = time.monotonic()
        child = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        count = [0]

        def read() -> None:
            assert child.stdout is not None
            for _ in child.stdout:  # one JSON line per explained frame
                count[0] += 1

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        samples: list[Sample] = []
        while child.poll() is None:
            s = _sample(child.pid, count[0])
            if s is not None:
                samples.append(s)
            time.sleep(0.2)
        reader.join(timeout=5)
        report = SoakReport(count[0], time.monotonic() - start, child.returncode, samples=samples)
    # After warm-up and before the last frame: the shutdown (threads joined, files closed) is not steady state.
    after = [s for s in samples if frames // 5 <= s.frame < frames]
    if after:
        report.warm, report.end = after[0], after[-1]
        report.peak_rss_after_warmup_mb = max(s.rss_mb for s in after)
        report.rss_growth_mb = report.peak_rss_after_warmup_mb - after[0].rss_mb
        report.fd_range_after_warmup = (min(s.fds for s in after), max(s.fds for s in after))
        report.thread_range_after_warmup = (min(s.threads for s in after), max(s.threads for s in after))
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.bench.soak", description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=20000)
    p.add_argument("--model", type=Path, default=REPO / "models" / "fruit")
    p.add_argument("--json", type=Path)
    p.add_argument("extra", nargs="*", help="more `edge run` arguments (after --)")
    args = p.parse_args(argv)
    r = soak(args.frames, args.model, args.extra)
    summary = {k: v for k, v in asdict(r).items() if k != "samples"}
    if args.json:
        args.json.write_text(json.dumps(asdict(r), indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return 0 if r.exit_code == 0 and r.frames == args.frames else 1


if __name__ == "__main__":
    raise SystemExit(main())
