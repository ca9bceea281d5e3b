"""python -m tools.bench.cam_methods: every CAM method's ms per frame beside classify-only and Grad-CAM, on the fruit
bundle and a MobileNetV2-224 bundle, at 1 thread and at every core, printed as a table with the CPU named.

    python -m tools.bench.cam_methods [--repeats 20] [--threads 1,auto] [--max-passes 3000] [--json OUT]
                                      [--sheet PNG] [--smoothing gradcam,hirescam,...]

Each figure is the median ms of explain(frame, method=M) on one 640x480 frame (preprocessing included). The trunk-pass
methods run `--trunk-repeats` times; where one call would take more than --max-passes feature-model passes (SS-CAM
and IS-CAM on a 1280-channel layer), the figure is their pass count times one feature-model pass (single, unbatched),
marked as estimated. --sheet writes a contact sheet of every method's
overlay on the same frames (docs/cam-methods.png). --smoothing M,...: instead, those methods' ms plain, with
eigen_smooth, with aug_smooth and with both (pytorch-grad-cam's options, docs/cam-methods.md).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.explain.cam import METHODS, TRUNK_PASS_METHODS
from edge.explain.cam.smoothing import Smoothing
from edge.explain.explainer import Explainer
from tools.bench.edge_side import interleaved_ms
from tools.bench.processes import REPO, cpu_name
from tools.common.contact_sheet import U8, overlay_rgb, write_sheet

BUNDLES = {"fruit": REPO / "models" / "fruit", "mobilenetv2_224": REPO / "build" / "bench" / "mobilenetv2_224"}
FRAMES = sorted((REPO / "samples").glob("*.jpg"))


def _read(path: Path) -> U8:
    return np.ascontiguousarray(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB), np.uint8)  # (H, W, 3) RGB


def _frame() -> U8:
    return np.ascontiguousarray(cv2.resize(_read(FRAMES[0]), (640, 480)), np.uint8)  # (480, 640, 3) RGB


def passes(method: str, k: int) -> str:
    """Feature-model (trunk) and head passes per explained frame, for the table."""
    m = METHODS[method]
    extra = getattr(m, "trunk_passes", None)
    if extra is not None:
        return f"1 + {extra(k)} trunk"
    return "1 trunk, k head" if method == "ablationcam" else "1 trunk"


def _time_trunk_method(ex: Explainer, frame: U8, method: str, repeats: int, max_passes: int,
                       pass_ms: float) -> tuple[float, bool]:
    """(median ms, estimated) of one trunk-pass method: measured, or where one call would take more than max_passes
    feature-model passes, estimated as its passes times one pass's ms plus Grad-CAM's frame (passes dominate)."""
    count = METHODS[method].trunk_passes(ex.head.input_shape[-1])  # type: ignore[attr-defined]
    if count > max_passes:
        return count * pass_ms, True
    ex.explain(frame, method=method)  # warm: the trunk runner's interpreter is made on first use
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        ex.explain(frame, method=method)
        times.append((time.perf_counter() - t) * 1e3)
    return float(np.median(times)), False


def bench_bundle(bundle: Path, threads: str, repeats: int, trunk_repeats: int, max_passes: int) -> dict[str, Any]:
    ex = Explainer.load(bundle, num_threads=threads if threads == "auto" else int(threads))
    frame = _frame()
    head_only = [m for m in METHODS if m not in TRUNK_PASS_METHODS and (m != "cam" or ex.head.cam_weights is not None)]
    fns = {"classify": lambda: ex.classify(frame)}
    fns |= {m: (lambda m=m: ex.explain(frame, method=m)) for m in head_only}  # type: ignore[misc]
    x = ex.preprocess(frame)
    fns["features"] = lambda: ex.features(x)
    ms = interleaved_ms(fns, repeats, warmup=3)
    extrapolated = []
    for method in TRUNK_PASS_METHODS:
        ms[method], guessed = _time_trunk_method(ex, frame, method, trunk_repeats, max_passes, ms["features"])
        if guessed:
            extrapolated.append(method)
    return {"ms": ms, "extrapolated": extrapolated, "k": ex.head.input_shape[-1]}


SMOOTHINGS = (Smoothing(), Smoothing(eigen=True), Smoothing(aug=True), Smoothing(aug=True, eigen=True))


def bench_smoothing(bundle: Path, threads: str, methods: list[str], repeats: int) -> dict[str, dict[str, float]]:
    """{method: {smoothing: median ms}} of explain(frame, method=M, aug_smooth=..., eigen_smooth=...)."""
    ex = Explainer.load(bundle, num_threads=threads if threads == "auto" else int(threads))
    frame = _frame()
    out: dict[str, dict[str, float]] = {}
    for method in methods:
        fns = {s.describe(): (lambda s=s, m=method: ex.explain(frame, method=m, aug_smooth=s.aug,
                                                               eigen_smooth=s.eigen)) for s in SMOOTHINGS}
        out[method] = interleaved_ms(fns, repeats, warmup=1)  # type: ignore[arg-type]  # the defaults bind s, m
    return out


def smoothing_table(cpu: str, runs: dict[str, dict[str, dict[str, dict[str, float]]]]) -> str:
    header = ["bundle", "threads", "method", *(f"{s.describe()} ms" for s in SMOOTHINGS)]
    lines = [f"CPU: {cpu}", "", "| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for bundle, by_threads in runs.items():
        for threads, by_method in by_threads.items():
            for method, ms in by_method.items():
                cells = [f"{ms[s.describe()]:.1f}" for s in SMOOTHINGS]
                lines.append(f"| {bundle} | {threads} | `{method}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table(report: dict[str, Any]) -> str:
    runs = report["runs"]  # {bundle: {threads: {...}}}
    columns = [(b, t) for b in runs for t in runs[b]]
    header = ["method", *(f"passes ({b}, k={next(iter(runs[b].values()))['k']})" for b in runs),
              *(f"{b} {t} thr ms" for b, t in columns)]
    lines = [f"CPU: {report['cpu']}", "", "| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for name in ["classify", *METHODS]:
        cells = [f"`{name}`"]
        for b in runs:
            k = next(iter(runs[b].values()))["k"]
            cells.append("1 trunk, no map" if name == "classify" else passes(name, k))
        for b, t in columns:
            run = runs[b][t]
            value = run["ms"].get(name)
            mark = " (estimated)" if name in run["extrapolated"] else ""
            cells.append("n/a" if value is None else f"{value:.1f}{mark}" if value >= 10 else f"{value:.2f}{mark}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def sheet(path: Path, bundle: Path) -> None:
    """Every method's overlay on the same frames: per frame, the frame and then its methods, 7 tiles a row."""
    ex = Explainer.load(bundle)
    rows = []
    for image_path in FRAMES[:3]:
        image = _read(image_path)
        tiles = [(image, f"{image_path.stem}: {ex.explain(image).label}")]
        tiles += [(overlay_rgb(image, ex.explain(image, method=m).cam), m) for m in METHODS]
        rows += [tiles[i:i + 7] for i in range(0, len(tiles), 7)]
    write_sheet(path, rows, tile=150, title=f"every CAM method on the same frames (bundle {bundle.name}, top class)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.bench.cam_methods", description=__doc__.splitlines()[0])
    p.add_argument("--bundles", default=",".join(f"{k}={v}" for k, v in BUNDLES.items()),
                   help="NAME=BUNDLE,... (default: the fruit bundle and build/bench's MobileNetV2-224)")
    p.add_argument("--threads", default="1,auto", help="thread counts, comma-separated (default 1,auto)")
    p.add_argument("--repeats", type=int, default=20, help="calls per head-only method (default 20)")
    p.add_argument("--trunk-repeats", type=int, default=1, help="calls per trunk-pass method (default 1)")
    p.add_argument("--max-passes", type=int, default=3000,
                   help="above this many feature-model passes per call, estimate from one pass (default 3000)")
    p.add_argument("--json", type=Path, help="also write the figures as JSON here")
    p.add_argument("--sheet", type=Path, help="write the contact sheet of every method here and exit")
    p.add_argument("--smoothing", metavar="METHODS", help="comma-separated methods: their ms plain, with eigen_smooth, "
                   "aug_smooth and both, instead of the table of every method")
    args = p.parse_args(argv)
    bundles = dict(item.split("=", 1) for item in args.bundles.split(","))
    if args.sheet:
        sheet(args.sheet, Path(bundles["fruit"]))
        return 0
    cpu = f"{cpu_name()}, {os.cpu_count()} cores"
    if args.smoothing:
        methods = args.smoothing.split(",")
        unknown = [m for m in methods if m not in METHODS]
        if unknown:
            p.error(f"--smoothing: unknown method {unknown[0]!r}; choose among {', '.join(METHODS)}")
        smooth_runs = {name: {t: bench_smoothing(Path(b), t, methods, args.repeats) for t in args.threads.split(",")}
                       for name, b in bundles.items()}
        print(smoothing_table(cpu, smooth_runs))
        if args.json:
            args.json.write_text(json.dumps({"cpu": cpu, "smoothing": smooth_runs}, indent=2))
        return 0
    runs: dict[str, dict[str, Any]] = {}
    for name, bundle in bundles.items():
        runs[name] = {t: bench_bundle(Path(bundle), t, args.repeats, args.trunk_repeats, args.max_passes)
                      for t in args.threads.split(",")}
    report = {"cpu": cpu, "runs": runs}
    print(table(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
