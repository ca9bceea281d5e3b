"""python -m tools.bench.trigger : what [trigger] mode = "motion" saves against "always" on a mostly still scene.

The real loop (edge.service.loop.Loop with the service's pacing) runs the bundle on a paced synthetic camera whose
scene is still 90 % of the time: every --period seconds a box crosses it for a tenth of that. For each mode it
prints the process's CPU time (user + system, everything: capture, motion test, explaining) scaled to an hour, the
frames explained and skipped, and the delay from the first frame of each change to its explanation reaching the
outputs (the goal: under two frame intervals). With --live-view a browser-like output also draws and JPEG-encodes
every frame, explained or not, as an open dashboard does. The CPU is printed first: figures mean nothing without it.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import threading
import time
from pathlib import Path

import numpy as np

from edge.explain.explainer import Explainer
from edge.records import Frame, Result
from edge.service.loop import Explaining, Loop, LoopConfig
from edge.service.pacing import Pacing
from edge.service.trigger import TriggerConfig
from edge.sinks.base import Sink, SinkWorker
from edge.sources.base import Pacer, SourceBase
from tools.bench.edge_side import JpegViewer
from tools.bench.processes import cpu_name

H, W = 480, 640


class StillScene(SourceBase):
    """A paced camera on a still, noisy scene; a box crosses it for the last tenth of every period."""

    live = True
    name = "still-scene"

    def __init__(self, fps: float, period_s: float, seconds: float) -> None:
        rng = np.random.default_rng(0)
        base = np.tile(np.linspace(30, 220, W, dtype=np.float32), (H, 1))[:, :, None].repeat(3, axis=2)
        # (8, H, W, 3) uint8: sensor noise precomputed, so that making frames costs both modes the same, little
        self.noisy = np.clip(base + rng.normal(0, 3, (8, H, W, 3)), 0, 255).astype(np.uint8)
        self.fps, self.period, self.frames = fps, round(period_s * fps), round(seconds * fps)
        self.index = 0
        self.onsets: dict[int, float] = {}  # frame index of each change's first frame -> capture time (monotonic)
        self._pacer = Pacer(fps)

    def read(self) -> Frame | None:
        if self.index >= self.frames:
            return None
        self._pacer.wait()
        image = self.noisy[self.index % 8].copy()
        phase = self.index % self.period
        moving = phase >= self.period * 9 // 10
        if moving:
            step = phase - self.period * 9 // 10
            x = 40 + step * (W - 160) // max(1, self.period // 10)
            image[180:300, x:x + 80] = (250, 250, 210)
            if step == 0:
                self.onsets[self.index] = time.monotonic()
        frame = Frame(image=image, index=self.index, timestamp=time.time())
        self.index += 1
        return frame


class Arrivals:
    """A sink noting when each explained frame reaches the outputs."""

    name = "arrivals"

    def __init__(self) -> None:
        self.at: dict[int, float] = {}

    def open(self) -> None:
        pass

    def handle(self, result: Result) -> None:
        self.at[result.frame.index] = time.monotonic()

    def close(self) -> None:
        pass


def run_mode(explainer: Explainer, mode: str, args: argparse.Namespace) -> dict[str, float]:
    source = StillScene(args.fps, args.period, args.seconds)
    arrivals = Arrivals()
    pacing = Pacing(TriggerConfig(mode=mode, keepalive_s=args.keepalive))
    sinks: list[Sink] = [arrivals]
    if args.live_view:
        sinks.append(SinkWorker(JpegViewer(), blocking=False, size=1))
    for sink in sinks:
        sink.open()
    loop = Loop(explainer, source, sinks, config=LoopConfig(),
                explaining=Explaining(pacing=pacing), stop=threading.Event())
    before = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.monotonic()
    stats = loop.run()
    for sink in sinks:
        sink.close()
    wall = time.monotonic() - wall
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    delays = []
    for onset, captured in source.onsets.items():
        explained = [i for i in arrivals.at if onset <= i < onset + source.period // 10]
        delays.append((arrivals.at[min(explained)] - captured) * 1e3 if explained else float("inf"))
    return {"cpu_s_per_hour": cpu / wall * 3600, "explained": stats.frames, "skipped": stats.skipped,
            "dropped": stats.dropped, "delay_ms_median": statistics.median(delays) if delays else float("nan"),
            "delay_ms_max": max(delays, default=float("nan")), "changes": len(delays)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.trigger", description=__doc__)
    parser.add_argument("--model", type=Path, default=Path("models/fruit"))
    parser.add_argument("--fps", type=float, default=10.0, help="camera frame rate (default 10)")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each mode's run (default 60)")
    parser.add_argument("--period", type=float, default=10.0, help="seconds between changes (default 10)")
    parser.add_argument("--keepalive", type=float, default=60.0, help="[trigger] keepalive_s (default 60)")
    parser.add_argument("--threads", type=int, default=1, help="TFLite threads (default 1)")
    parser.add_argument("--live-view", action="store_true", help="also draw and encode every frame, as a browser "
                                                                 "view does")
    args = parser.parse_args(argv)
    print(f"CPU: {cpu_name()}, {len(os.sched_getaffinity(0))} CPUs; {args.fps:g} fps, still 90 % of the time, "
          f"a change every {args.period:g} s, {args.seconds:g} s per mode, {args.threads} TFLite thread(s)"
          f"{', every frame drawn and encoded (--live-view)' if args.live_view else ''}")
    explainer = Explainer.load(args.model, num_threads=args.threads)
    results = {mode: run_mode(explainer, mode, args) for mode in ("always", "motion")}
    interval_ms = 1e3 / args.fps
    for mode, r in results.items():
        print(f"{mode:>7}: {r['cpu_s_per_hour']:7.0f} CPU s per hour ({r['cpu_s_per_hour'] / 36:.1f} % of a core); "
              f"{r['explained']:.0f} explained, {r['skipped']:.0f} skipped, {r['dropped']:.0f} dropped; "
              f"change to explanation {r['delay_ms_median']:.0f} ms median, {r['delay_ms_max']:.0f} ms max over "
              f"{r['changes']:.0f} changes (two frame intervals: {2 * interval_ms:.0f} ms)")
    saved = 1 - results["motion"]["cpu_s_per_hour"] / results["always"]["cpu_s_per_hour"]
    print(f"motion saves {saved:.0%} of always's CPU time")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
