"""Side-by-side benchmark: the device's explain against its classify-only floor and TensorFlow Grad-CAM.

    python -m tools.bench [--quick] [--rounds 3] [--head-form-rounds 5] [--json PATH] [--readme docs/performance.md]

Every contender runs in its own subprocess (TensorFlow and the TFLite runtimes do not share a process well), on the
shipped fruit bundle and on a MobileNetV2-224 GAP-head bundle (random weights: timing only), at equal thread counts (1,
and every CPU of this process's affinity mask) and each at its own defaults (the edge side's "auto", TensorFlow's
own). Then explain's per-frame tail over classify per head form and thread count, and the device loop's frame rate for
1..N TFLite threads (the measurement behind threads = "auto"). Medians over repeated calls; every ratio is computed
from figures of this one run. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tqdm import tqdm

from edge.explain.runtime import available_cpus
from tools.bench.bundles import HEAD_FORMS, frame_sets, head_form_bundle, int8_bundle, mobilenet_bundle
from tools.bench.processes import REPO, cold_start, cpu_name, machine_peak, run_json
from tools.bench.report import README_BEGIN, median_of, table, targets, update_readme
from tools.common.cli_support import add_common, one_line_errors, setup_logging

FRUIT = (REPO / "models" / "fruit", REPO / "models" / "fruit.keras")


def bench_int8(float_bundle: Path, int8: Path, threads: int, repeats: int, compare: Path | None) -> dict[str, Any]:
    common = ["--threads", str(threads)]
    result: dict[str, Any] = {"edge": run_json(["-m", "tools.bench.edge_side", str(int8), *common,
                                                 "--repeats", str(repeats)])}
    if compare is not None:
        result["agreement"] = run_json(["-m", "tools.bench.edge_side", str(int8), *common, "--compare",
                                         str(float_bundle), "--images", str(compare)])
    return result


def round_ratios(edge: dict[str, Any], other: dict[str, Any], tf: dict[str, Any]) -> dict[str, Any]:
    """Every ratio the targets speak of, from the figures of one round (contenders measured back to back)."""
    floor, gradcam = edge["classify_ms"], edge["explain_ms"]["gradcam"]
    ratios: dict[str, Any] = {
        "gradcam_over_classify": gradcam / floor,
        "method_over_classify": {m: v / floor for m, v in edge["explain_ms"].items()},
        "tf_function_over_edge": tf["function_ms"] / gradcam,
        "tf_eager_over_edge": tf["eager_ms"] / gradcam,
        "tf_function_classify_over_edge_classify": tf["function_classify_ms"] / floor,
        "litert_over_tflite_runtime_classify": floor / other["classify_ms"],
    }
    if "frame_path" in edge:
        floor_fps = 1e3 / floor
        ratios["loop_fps_over_classify_fps"] = edge["frame_path"]["loop_fps"] / floor_fps
        ratios["serial_fps_over_classify_fps"] = edge["frame_path"]["fps"] / floor_fps
    return ratios


def edge_run(bundle: Path, threads: str, repeats: int, *extra: str) -> dict[str, Any]:
    return run_json(["-m", "tools.bench.edge_side", str(bundle), "--threads", threads, "--repeats", str(repeats),
                     *extra])


def tf_run(model: Path, target: str, threads: str, repeats: int, *extra: str) -> dict[str, Any]:
    return run_json(["-m", "tools.bench.tf_side", str(model), target, "--threads", threads,
                     "--repeats", str(max(10, repeats // 4)), *extra])


def view_ratios(edge: dict[str, Any], tf: dict[str, Any]) -> dict[str, float]:
    """The Grad-CAM and TensorFlow ratios of one thread setting (both contenders run with it)."""
    floor, gradcam = edge["classify_ms"], edge["explain_ms"]["gradcam"]
    return {"gradcam_over_classify": gradcam / floor, "tf_function_over_edge": tf["function_ms"] / gradcam,
            "tf_function_classify_over_edge_classify": tf["function_classify_ms"] / floor}


def bench_model(name: str, bundle: Path, model: Path, repeats: int, rounds: int, frame_path: bool) -> dict[str, Any]:
    """Each round runs every contender once, back to back; figures and ratios are medians over the rounds. The full
    comparison at one thread; Grad-CAM, classify and TensorFlow again at all cores and at each side's defaults."""
    manifest = json.loads((bundle / "manifest.json").read_text())
    target = manifest["target_layer"]
    views = {"all_cores": str(available_cpus()), "defaults": "default"}
    per_round: list[dict[str, Any]] = []
    for _ in tqdm(range(rounds), desc=name, unit="round", leave=False):
        edge = edge_run(bundle, "1", repeats, *(["--frame-path"] if frame_path else []))
        other = edge_run(bundle, "1", repeats, "--runtime", "tflite_runtime")
        tf = tf_run(model, target, "1", repeats)
        cold = {
            "edge": cold_start(["-m", "tools.bench.edge_side", str(bundle), "--threads", "1", "--first-only"]),
            "tensorflow": cold_start(["-m", "tools.bench.tf_side", str(model), target, "--threads", "1",
                                      "--first-only"]),
        }
        result = {"edge": edge, "tflite_runtime": other, "tensorflow": tf, "cold_start": cold,
                  "ratios": round_ratios(edge, other, tf)}
        for view, threads in views.items():
            v_edge = edge_run(bundle, threads, repeats, "--methods", "gradcam")
            v_tf = tf_run(model, target, threads, repeats, "--function-only")
            result[view] = {"edge": v_edge, "tensorflow": v_tf}
            result["ratios"][view] = view_ratios(v_edge, v_tf)
        per_round.append(result)
    result = median_of(per_round)
    cold = result["cold_start"]
    result["ratios"]["edge_rss_over_tf"] = cold["edge"]["peak_rss_mb"] / cold["tensorflow"]["peak_rss_mb"]
    result["ratios"]["edge_cold_start_over_tf"] = cold["edge"]["seconds"] / cold["tensorflow"]["seconds"]
    flops = manifest["features"]["flops"]
    return {"model": name, "rounds": rounds, **result, "gflops": flops / 1e9,
            "achieved_gflop_per_s": flops / 1e9 / (result["edge"]["features_ms"] / 1e3)}


def bench_head_forms(work: Path, repeats: int, rounds: int) -> list[dict[str, Any]]:
    """Explain's per-frame tail over classify per head form, at 1 thread and at all cores: classify and Grad-CAM
    explain timed call by call in turn on frames of the model's input size; medians over rounds of per-round ratios."""
    forms: list[tuple[str, Path, str, int]] = [("fruit (shipped)", FRUIT[0], "GAP -> Dense 3", repeats * 4)]
    for key, (_, _, form) in HEAD_FORMS.items():
        forms.append((key, head_form_bundle(work, key)[0], form, repeats * (4 if "flatten" in key else 1)))
    counts = sorted({1, available_cpus()})
    out = []
    for name, bundle, form, pairs in forms:
        for threads in counts:
            per_round = []
            for _ in range(rounds):
                r = edge_run(bundle, str(threads), pairs, "--methods", "gradcam", "--model-size", "--pairs-only")
                classify, explain = r["classify_ms"], r["explain_ms"]["gradcam"]
                fast_classify, fast_explain = r["p10_ms"]["classify"], r["p10_ms"]["gradcam"]
                per_round.append({"classify_ms": classify, "explain_ms": explain,
                                  "tail_us": (explain - classify) * 1e3, "ratio": explain / classify,
                                  "p10_tail_us": (fast_explain - fast_classify) * 1e3,
                                  "p10_ratio": fast_explain / fast_classify})
            # the rounds' spread beside the median: whether a target holds with a margin or only in some rounds
            spread = [min(r["ratio"] for r in per_round), max(r["ratio"] for r in per_round)]
            out.append({"model": name, "head": form, "threads": threads, "pairs": pairs, "rounds": rounds,
                        **median_of(per_round), "ratio_range": spread})
    return out


def thread_sweep(bundle: Path, repeats: int, rounds: int) -> list[dict[str, Any]]:
    """The device loop's frame rate (capture thread -> explain -> drawing+JPEG sink thread, 640x480) for 1..N TFLite
    threads: what threads = "auto" was chosen by (docs/device.md)."""
    out = []
    for threads in range(1, available_cpus() + 1):
        runs = [edge_run(bundle, str(threads), repeats, "--loop-only") for _ in range(rounds)]
        m = median_of(runs)
        out.append({"threads": threads, "classify_ms": m["classify_ms"], "loop_fps": m["frame_path"]["loop_fps"]})
    return out


def add_ceiling(model: dict[str, Any], peak_gflop_per_s: float) -> None:
    """What limits the tf.function ratio: the feature model's time if it ran at the machine's GEMM peak, and the
    ratio TensorFlow's Grad-CAM would have to that (an upper bound for any float implementation on this machine)."""
    peak_ms = model["gflops"] / peak_gflop_per_s * 1e3
    model["features_at_peak_ms"] = peak_ms
    model["ratios"]["tf_function_over_features_at_peak"] = model["tensorflow"]["function_ms"] / peak_ms


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer repeats, one round (a smoke run, noisier figures)")
    p.add_argument("--rounds", type=int, help="rounds of every contender (default 3; 1 with --quick)")
    p.add_argument("--head-form-rounds", type=int,
                   help="rounds of the per-head-form tail (default 5: its few microseconds move between runs; 1 with "
                        "--quick)")
    p.add_argument("--json", type=Path, help="write the full report here")
    p.add_argument("--readme", type=Path, help=f"put the table into this file's {README_BEGIN} block")
    add_common(p)
    args = p.parse_args(argv)
    setup_logging(args.debug)
    repeats = 30 if args.quick else 300
    rounds = args.rounds or (1 if args.quick else 3)
    head_form_rounds = args.head_form_rounds or (1 if args.quick else 5)
    load_at_start = os.getloadavg()  # the machine is shared: the report says how busy it was
    with one_line_errors(args.debug, RuntimeError, subprocess.CalledProcessError) as status:
        work = REPO / "build" / "bench"
        calibration, compare = frame_sets(work)
        peak = machine_peak(1)
        models = [bench_model("fruit (shipped)", *FRUIT, repeats, rounds, frame_path=True)]
        models[0]["int8"] = bench_int8(FRUIT[0], int8_bundle(FRUIT[1], FRUIT[0], work / "fruit-int8", calibration),
                                       1, repeats, compare)
        mobilenet = mobilenet_bundle(work)
        models.append(bench_model("MobileNetV2-224 GAP", *mobilenet, max(10, repeats // 5), rounds, frame_path=False))
        # random weights: speed only (agreement of two random models' top-1 says nothing)
        models[1]["int8"] = bench_int8(mobilenet[0], int8_bundle(mobilenet[1], mobilenet[0],
                                                                 work / "mobilenetv2_224-int8", calibration),
                                       1, max(10, repeats // 5), None)
        peak = max(peak, machine_peak(1))  # the best of a measurement before and after
        for m in models:
            add_ceiling(m, peak)
        report: dict[str, Any] = {
            "date": datetime.now(UTC).strftime("%Y-%m-%d"), "threads": 1, "cpus": available_cpus(),
            "rounds": rounds, "machine_peak_gflop_per_s": peak,
            "machine": f"{cpu_name()}, {platform.machine()}, {os.cpu_count()} cores, "
                       f"Python {platform.python_version()}",
            "models": models,
            "head_forms": bench_head_forms(work, repeats, head_form_rounds),
            "thread_sweep": thread_sweep(FRUIT[0], repeats, rounds)}
        report["load_average"] = {"start": load_at_start, "end": os.getloadavg()}  # 1, 5, 15 minutes
        report["targets"] = targets(report)
        if args.json:
            args.json.write_text(json.dumps(report, indent=2) + "\n")
        text = table(report)
        if args.readme:
            update_readme(args.readme, text)
        print(text)
    return status.code
