"""Benchmark worker for the device side (no TensorFlow): prints one JSON object of medians in ms.

    python -m tools.bench.edge_side BUNDLE [--threads N|default] [--repeats 200] [--runtime auto] [--methods gradcam,..]
                                    [--model-size] [--pairs-only]
                                    [--first-only] [--frame-path] [--loop-only]
    python -m tools.bench.edge_side INT8_BUNDLE --compare FLOAT_BUNDLE --images DIR   (top-1 agreement, map correlation)
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edge.explain.cam import METHODS, TRUNK_PASS_METHODS
from edge.explain.explainer import Explainer
from edge.jpeg import encode_rgb

# Methods whose NumPy work (an SVD) runs on the BLAS thread pool: timed apart from the others.
BLAS_POOL_METHODS = ("eigencam", "eigengradcam", "kpcacam", "ablationcam")


def interleaved_ms(fns: dict[str, Callable[[], Any]], repeats: int, warmup: int = 10,
                   quantile: float = 0.5) -> dict[str, float]:
    """Median ms per call of each function, timed in turn (one call of each per round): on a shared machine a slow
    spell then slows every contender alike instead of whichever happened to be measured during it."""
    times = interleaved_times(fns, repeats, warmup)
    return {name: float(np.quantile(ts, quantile) * 1e3) for name, ts in times.items()}


def interleaved_times(fns: dict[str, Callable[[], Any]], repeats: int, warmup: int = 10) -> dict[str, list[float]]:
    """Seconds of every call of each function, timed in turn."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return times


def frame_path(ex: Explainer, repeats: int) -> dict[str, float]:
    """640x480 synthetic frames: preprocess -> explain -> overlay -> JPEG, per stage and frames per second."""

    from edge.explain.render import RenderConfig, render
    from edge.sources.base import SourceConfig
    from edge.sources.synthetic import SyntheticSource

    source = SyntheticSource(SourceConfig(spec="synthetic", width=640, height=480))
    source.open()
    config = RenderConfig()
    stages: dict[str, list[float]] = {"capture": [], "explain": [], "overlay": [], "jpeg": []}
    total = []
    for i in range(repeats + 10):
        t0 = time.perf_counter()
        frame = source.read()
        assert frame is not None  # synthetic frames never end
        image = frame.image
        t1 = time.perf_counter()
        e = ex.explain(image)
        t2 = time.perf_counter()
        out = render(image, e, config)
        t3 = time.perf_counter()
        encode_rgb(out, 80)
        t4 = time.perf_counter()
        if i >= 10:
            for key, value in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                stages[key].append(value * 1e3)
            total.append(t4 - t0)
    source.close()
    result = {f"{k}_ms": float(np.median(v)) for k, v in stages.items()}
    result["fps"] = float(1.0 / np.median(total))
    result["frame_size"] = [int(image.shape[1]), int(image.shape[0])]  # type: ignore[assignment]
    return result


class JpegViewer:
    """What an open browser view costs per frame: the overlay drawn and encoded as JPEG (live_view: also the frames a
    trigger leaves unexplained)."""

    name = "jpeg"
    live_view = True

    def open(self) -> None:
        pass

    def handle(self, result: Any) -> None:
        encode_rgb(result.overlay, 80)

    def close(self) -> None:
        pass


def loop_path(ex: Explainer, frames: int) -> dict[str, float]:
    """The device's own loop on unpaced 640x480 synthetic frames: capture thread -> explain -> a sink thread that draws
    and encodes every frame (blocking: none dropped). Frames per second through the whole pipeline."""
    import threading

    from edge.service.loop import Explaining, Loop, LoopConfig
    from edge.sinks.base import SinkWorker
    from edge.sources.base import SourceConfig
    from edge.sources.synthetic import SyntheticSource

    def run(count: int) -> float:
        source = SyntheticSource(SourceConfig(spec="synthetic", width=640, height=480))
        source.open()
        sink = SinkWorker(JpegViewer(), blocking=True)
        sink.open()
        loop = Loop(ex, source, [sink], config=LoopConfig(max_frames=count), explaining=Explaining(),
                    stop=threading.Event())
        t0 = time.perf_counter()
        loop.run()
        sink.close(timeout=10.0)  # every queued frame drawn and encoded
        elapsed = time.perf_counter() - t0
        source.close()
        return loop.stats.frames / elapsed

    run(20)  # warm-up
    rates = [run(frames) for _ in range(3)]
    return {"loop_fps": float(np.median(rates)), "loop_frames": float(frames)}


def agreement(float_ex: Explainer, other_ex: Explainer, images: Path) -> dict[str, float]:
    """Top-1 agreement and mean heatmap correlation (Grad-CAM of the float model's class) over images/*.jpg."""
    import cv2

    from tools.common.agreement import Agreement

    compared = Agreement(float_ex, other_ex)
    for path in sorted(images.glob("*.jpg")):
        bgr = cv2.imread(str(path))
        if bgr is not None:
            compared.add(np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), np.uint8))  # (H, W, 3) uint8 RGB
    if compared.frames == 0:
        raise OSError(f"{images}: no readable .jpg images to compare on")
    summary = compared.summary()
    return {"images": summary["frames"], "top1_agreement": summary["top1_agreement"],
            "cam_correlation": summary["cam_correlation"]}


def thread_count(text: str) -> int | None:
    """--threads: a count, or 'default' (None: whatever Explainer.load does when not told)."""
    return None if text == "default" else int(text)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("bundle", type=Path)
    p.add_argument("--threads", type=thread_count, default=1, help="TFLite threads, or 'default' (the API's default)")
    p.add_argument("--repeats", type=int, default=200)
    p.add_argument("--runtime", default="auto")
    p.add_argument("--methods", type=lambda s: s.split(","), help="explain only with these methods (default: all)")
    p.add_argument("--model-size", action="store_true", help="frames of the model's input size (default 640x480)")
    p.add_argument("--pairs-only", action="store_true", help="time classify and explain in turn, features apart")
    p.add_argument("--first-only", action="store_true", help="load, explain one frame, exit (cold start)")
    p.add_argument("--frame-path", action="store_true")
    p.add_argument("--loop-only", action="store_true", help="only the device loop's frame rate (and classify)")
    p.add_argument("--compare", type=Path, help="instead: agreement of BUNDLE (e.g. int8) with this float bundle")
    p.add_argument("--images", type=Path, help="with --compare: a folder of .jpg frames")
    args = p.parse_args(argv)
    threads: dict[str, Any] = {} if args.threads is None else {"num_threads": args.threads}
    ex = Explainer.load(args.bundle, runtime=args.runtime, **threads)
    if args.compare:
        reference = Explainer.load(args.compare, runtime=args.runtime, **threads)
        print(json.dumps(agreement(reference, ex, args.images)))
        return 0
    rng = np.random.default_rng(0)
    height, width = (ex.manifest.input_height, ex.manifest.input_width) if args.model_size else (480, 640)
    frame = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    if args.first_only:
        ex.explain(frame)
        print(json.dumps({"ok": True}))
        return 0
    x = ex.preprocess(frame)
    report: dict[str, Any] = {"runtime": ex.features.runtime, "threads": ex.features.num_threads}
    if args.loop_only:
        report["classify_ms"] = interleaved_ms({"classify": lambda: ex.classify(frame)}, args.repeats)["classify"]
        report["frame_path"] = loop_path(ex, max(100, args.repeats))
        print(json.dumps(report))
        return 0
    # From the same 640x480 frame as TensorFlow's contender: preprocessing (resize, scale) is part of every figure.
    fns: dict[str, Callable[[], Any]] = {"features": lambda: ex.features(x), "classify": lambda: ex.classify(frame)}
    # the trunk-pass methods (k feature-model passes a frame) by default in tools.bench.cam_methods only
    default = [m for m in METHODS if m not in TRUNK_PASS_METHODS]
    methods = [m for m in (args.methods or default) if m != "cam" or ex.head.cam_weights is not None]
    fns |= {m: (lambda m=m: ex.explain(frame, method=m)) for m in methods}  # type: ignore[misc]
    if args.pairs_only:  # classify and explain alone in turn: a features call before classify would wake other
        # threads (NumPy's BLAS pool) differently for classify than for explain, and bias the pair
        times = interleaved_times({k: v for k, v in fns.items() if k != "features"}, args.repeats)
        times |= interleaved_times({"features": fns["features"]}, max(10, args.repeats // 10))
    else:
        # Eigen-CAM's SVD wakes NumPy's BLAS thread pool, whose threads then compete with the interpreter's: timed in
        # the same rotation, it slowed the next classify calls (9.4 ms against 1.2 ms alone, 2026-11-30). It gets a
        # rotation of its own, after the others.
        apart = {m: fns.pop(m) for m in BLAS_POOL_METHODS if m in fns}
        times = interleaved_times(fns, args.repeats)
        for name, fn in apart.items():
            times[name] = interleaved_times({name: fn}, args.repeats)[name]
    ms = {name: float(np.median(ts) * 1e3) for name, ts in times.items()}
    report["features_ms"], report["classify_ms"] = ms["features"], ms["classify"]
    report["explain_ms"] = {m: ms[m] for m in methods}
    # The 10th percentile too: on a loaded machine, most calls are preempted somewhere and medians of two contenders
    # can land in different modes; the fast tenth are the calls that ran undisturbed.
    report["p10_ms"] = {name: float(np.quantile(ts, 0.1) * 1e3) for name, ts in times.items()}
    if args.frame_path:
        report["frame_path"] = frame_path(ex, args.repeats // 2) | loop_path(ex, max(100, args.repeats))
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
