"""Side-by-side benchmark: the device's explain against its classify-only floor and TensorFlow Grad-CAM.

    python -m tools.bench [--quick] [--threads 1] [--rounds 3] [--json PATH] [--readme README.md]

Every contender runs in its own subprocess with the same thread count (TensorFlow and the TFLite runtimes do not share
a process well), on the shipped fruit bundle and on a MobileNetV2-224 GAP-head bundle (random weights: timing only).
Medians over repeated calls; every ratio is computed from figures of this one run. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tqdm import tqdm

from tools.cli_support import add_common, one_line_errors, setup_logging

REPO = Path(__file__).resolve().parent.parent
FRUIT = (REPO / "models" / "fruit", REPO / "models" / "fruit.keras")


def _run_json(args: list[str]) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=REPO, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:3])} failed: {proc.stderr.strip().splitlines()[-1:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def cold_start(args: list[str]) -> dict[str, float]:
    """Process start to first explanation, and the child's peak RSS (from wait4's rusage)."""
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")
    t = time.perf_counter()
    child = subprocess.Popen([sys.executable, *args], env=env, cwd=REPO, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - t
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:3])} exited {child.returncode}")
    return {"seconds": seconds, "peak_rss_mb": usage.ru_maxrss / 1024}


def mobilenet_bundle(work: Path) -> tuple[Path, Path]:
    bundle, model = work / "mobilenetv2_224", work / "mobilenetv2_224.keras"
    if _stale(bundle):
        work.mkdir(parents=True, exist_ok=True)
        build = ("from tools import architectures; "
                 f"architectures.mobilenetv2_gap(3, 224, alpha=1.0).save({str(model)!r})")
        subprocess.run([sys.executable, "-c", build], check=True, cwd=REPO, capture_output=True,
                       env=dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2"))
        subprocess.run([sys.executable, "-m", "tools.export", str(model), "--out", str(bundle), "--preprocess",
                        "symmetric", "--no-check"], check=True, cwd=REPO, capture_output=True,
                       env=dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2"))
    return bundle, model


MINI = REPO / "tests" / "data" / "fruits360-mini"  # real Fruits-360 fruit in the repo: the bench runs on a fresh clone


def _tool(args: list[str]) -> None:
    subprocess.run([sys.executable, *args], check=True, cwd=REPO, capture_output=True,
                   env=dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2"))


def machine_peak(threads: int) -> float:
    """The machine's float32 matrix-multiply rate with this many threads (OpenBLAS through NumPy), GFLOP/s: the
    ceiling a convolution (an im2col GEMM, as XNNPACK and oneDNN do it) can approach. The best of 15 products: a peak
    is what the machine reaches when nothing else gets in the way."""
    code = ("import time, numpy as np; n = 1024; a = np.random.rand(n, n).astype(np.float32); b = a.T.copy(); "
            "[a @ b for _ in range(3)]; ts = []\n"
            "for _ in range(15):\n t = time.perf_counter(); a @ b; ts.append(time.perf_counter() - t)\n"
            "print(2 * n ** 3 / min(ts) / 1e9)")
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return float(proc.stdout.strip())


def frame_sets(work: Path) -> tuple[Path, Path]:
    """Composited camera-like frames of the repo's Fruits-360 subset: training backgrounds for int8 calibration,
    evaluation backgrounds and held-out fruit for the float/int8 comparison."""
    calibration, compare = work / "calibration", work / "compare"
    if not any(calibration.glob("*.jpg")):
        _tool(["-m", "tools.samples", str(MINI), "--split", "train", "--backgrounds", "train", "--frames", "200",
               "--out", str(calibration)])
    if not any(compare.glob("*.jpg")):
        _tool(["-m", "tools.samples", str(MINI), "--split", "test", "--backgrounds", "eval", "--frames", "200",
               "--seed", "99", "--out", str(compare)])
    return calibration, compare


# The workstation code a cached bench bundle was made by: a change to any of it makes the cache stale.
EXPORT_CODE = ("tools/export.py", "tools/feature_export.py", "tools/feature_fold.py", "tools/head_builder.py",
               "tools/keras_graph.py", "tools/architectures.py")


def _stale(out: Path, *inputs: Path) -> bool:
    """True (and the stamp updated for the caller to rebuild) unless out was built from these very inputs and code."""
    digest = hashlib.sha256()
    for path in (*inputs, *(REPO / c for c in EXPORT_CODE)):
        digest.update(path.read_bytes() if path.is_file() else str(path).encode())
    stamp = out.with_name(out.name + ".built-from")
    if stamp.exists() and stamp.read_text() == digest.hexdigest() and (out / "manifest.json").exists():
        return False
    shutil.rmtree(out, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(digest.hexdigest())
    return True


def int8_bundle(model: Path, bundle: Path, out: Path, calibration: Path) -> Path:
    """The float bundle's model exported again with full-integer features (same target, score and preprocessing)."""
    if _stale(out, model, bundle / "manifest.json"):
        manifest = json.loads((bundle / "manifest.json").read_text())
        scale = manifest["preprocess"]["scale"][0]
        preset = "unit" if abs(scale - 1 / 255) < 1e-9 else "symmetric"  # the two presets the bench's bundles use
        _tool(["-m", "tools.export", str(model), "--out", str(out), "--classes", ",".join(manifest["class_names"]),
               "--preprocess", preset, "--target-layer", manifest["target_layer"], "--quantize", "int8",
               "--calibration", str(calibration), "--calibration-count", "100", "--no-check"])
    return out


def bench_int8(float_bundle: Path, int8: Path, threads: int, repeats: int, compare: Path | None) -> dict[str, Any]:
    common = ["--threads", str(threads)]
    result: dict[str, Any] = {"edge": _run_json(["-m", "tools.bench_edge", str(int8), *common,
                                                 "--repeats", str(repeats)])}
    if compare is not None:
        result["agreement"] = _run_json(["-m", "tools.bench_edge", str(int8), *common, "--compare",
                                         str(float_bundle), "--images", str(compare)])
    return result


def median_of(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """The element-wise median of same-shaped reports (nested dicts of numbers); other values from the first."""
    merged: dict[str, Any] = {}
    for key, value in reports[0].items():
        values = [r[key] for r in reports if key in r]
        if isinstance(value, dict):
            merged[key] = median_of(values)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            merged[key] = float(statistics.median(values))
        else:
            merged[key] = value
    return merged


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


def bench_model(name: str, bundle: Path, model: Path, threads: int, repeats: int, rounds: int,
                frame_path: bool) -> dict[str, Any]:
    """Each round runs every contender once, back to back; figures and ratios are medians over the rounds."""
    manifest = json.loads((bundle / "manifest.json").read_text())
    common = ["--threads", str(threads)]
    per_round: list[dict[str, Any]] = []
    for _ in tqdm(range(rounds), desc=name, unit="round", leave=False):
        edge = _run_json(["-m", "tools.bench_edge", str(bundle), *common, "--repeats", str(repeats),
                          *(["--frame-path"] if frame_path else [])])
        other = _run_json(["-m", "tools.bench_edge", str(bundle), *common, "--repeats", str(repeats),
                           "--runtime", "tflite_runtime"])
        tf = _run_json(["-m", "tools.bench_tf", str(model), manifest["target_layer"], *common,
                        "--repeats", str(max(10, repeats // 4))])
        cold = {
            "edge": cold_start(["-m", "tools.bench_edge", str(bundle), *common, "--first-only"]),
            "tensorflow": cold_start(["-m", "tools.bench_tf", str(model), manifest["target_layer"], *common,
                                      "--first-only"]),
        }
        per_round.append({"edge": edge, "tflite_runtime": other, "tensorflow": tf, "cold_start": cold,
                          "ratios": round_ratios(edge, other, tf)})
    result = median_of(per_round)
    cold = result["cold_start"]
    result["ratios"]["edge_rss_over_tf"] = cold["edge"]["peak_rss_mb"] / cold["tensorflow"]["peak_rss_mb"]
    result["ratios"]["edge_cold_start_over_tf"] = cold["edge"]["seconds"] / cold["tensorflow"]["seconds"]
    flops = manifest["features"]["flops"]
    return {"model": name, "rounds": rounds, **result, "gflops": flops / 1e9,
            "achieved_gflop_per_s": flops / 1e9 / (result["edge"]["features_ms"] / 1e3)}


def add_ceiling(model: dict[str, Any], peak_gflop_per_s: float) -> None:
    """What limits the tf.function ratio: the feature model's time if it ran at the machine's GEMM peak, and the
    ratio TensorFlow's Grad-CAM would have to that (an upper bound for any float implementation on this machine)."""
    peak_ms = model["gflops"] / peak_gflop_per_s * 1e3
    model["features_at_peak_ms"] = peak_ms
    model["ratios"]["tf_function_over_features_at_peak"] = model["tensorflow"]["function_ms"] / peak_ms


TARGETS: tuple[tuple[str, str, str, float], ...] = (
    # (label, ratio key, comparison, bound)
    ("Grad-CAM explain <= 1.03x classify-only", "gradcam_over_classify", "<=", 1.03),
    ("tf.function Grad-CAM >= 3x slower than explain", "tf_function_over_edge", ">=", 3.0),
    ("eager GradientTape Grad-CAM >= 20x slower than explain", "tf_eager_over_edge", ">=", 20.0),
    ("edge peak RSS <= 1/5 of TensorFlow's", "edge_rss_over_tf", "<=", 0.2),
    ("edge cold start <= 1/3 of TensorFlow's", "edge_cold_start_over_tf", "<=", 1 / 3),
    ("640x480 frame path (device loop) >= 0.6x classify-only fps", "loop_fps_over_classify_fps", ">=", 0.6),
)


def targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target, per model where it was measured, met or not."""
    rows = []
    for label, key, op, bound in TARGETS:
        for m in report["models"]:
            if key in m["ratios"]:
                value = m["ratios"][key]
                rows.append({"target": label, "model": m["model"], "value": value,
                             "met": value <= bound if op == "<=" else value >= bound})
    return rows


def table(report: dict[str, Any]) -> str:
    lines = [f"Measured {report['date']} on {report['machine']}, {report['threads']} thread(s) for every contender, "
             f"medians of {report['rounds']} round(s) (each round runs every contender back to back).", "",
             "| | " + " | ".join(r["model"] for r in report["models"]) + " |",
             "| --- |" + " --- |" * len(report["models"])]

    def row(label: str, fn: Any) -> None:
        lines.append(f"| {label} | " + " | ".join(fn(r) for r in report["models"]) + " |")

    row("classify-only (floor), ms", lambda r: f"{r['edge']['classify_ms']:.2f}")
    for m in report["models"][0]["edge"]["explain_ms"]:
        row(f"explain {m}, ms (x floor)", lambda r, m=m: f"{r['edge']['explain_ms'][m]:.2f} "
            f"({r['ratios']['method_over_classify'][m]:.2f}x)" if m in r["edge"]["explain_ms"] else "n/a")
    row("TF tf.function Grad-CAM, ms (x edge Grad-CAM)", lambda r: f"{r['tensorflow']['function_ms']:.2f} "
        f"({r['ratios']['tf_function_over_edge']:.1f}x)")
    row("TF eager GradientTape Grad-CAM, ms (x edge Grad-CAM)", lambda r: f"{r['tensorflow']['eager_ms']:.1f} "
        f"({r['ratios']['tf_eager_over_edge']:.1f}x)")
    row("TF tf.function classify-only, ms (x edge classify)", lambda r: (
        f"{r['tensorflow']['function_classify_ms']:.2f} "
        f"({r['ratios']['tf_function_classify_over_edge_classify']:.1f}x)"))
    peak = report["machine_peak_gflop_per_s"]
    row(f"feature model GFLOP/s (machine's float32 GEMM peak: {peak:.0f})", lambda r: (
        f"{r['achieved_gflop_per_s']:.1f} ({r['achieved_gflop_per_s'] / peak:.0%})"))
    row("tf.function Grad-CAM / feature model at that peak", lambda r: (
        f"{r['ratios']['tf_function_over_features_at_peak']:.1f}x (ceiling)"))
    row("classify: ai-edge-litert / tflite-runtime, ms", lambda r: f"{r['edge']['classify_ms']:.2f} / "
        f"{r['tflite_runtime']['classify_ms']:.2f}")
    row("int8 features: classify / explain gradcam, ms", lambda r: f"{r['int8']['edge']['classify_ms']:.2f} / "
        f"{r['int8']['edge']['explain_ms']['gradcam']:.2f}")
    row("int8 vs float: top-1 agreement / map correlation", lambda r: (
        f"{r['int8']['agreement']['top1_agreement']:.1%} / {r['int8']['agreement']['cam_correlation']:.2f} "
        f"({r['int8']['agreement']['images']:.0f} frames)") if "agreement" in r["int8"] else "n/a (random weights)")
    for side in ("edge", "tensorflow"):
        row(f"cold start {side}, s / peak RSS MB", lambda r, s=side: f"{r['cold_start'][s]['seconds']:.2f} / "
            f"{r['cold_start'][s]['peak_rss_mb']:.0f}")
    fruit = report["models"][0]
    if "frame_path" in fruit["edge"]:
        fp = fruit["edge"]["frame_path"]
        floor_fps = 1e3 / fruit["edge"]["classify_ms"]
        lines += ["", f"Whole frame path ({fruit['model']}, 640x480 synthetic frames; classify-only: {floor_fps:.0f} "
                  f"fps): the device's loop (capture thread, explain thread, a sink thread drawing and JPEG-encoding "
                  f"every frame) {fp['loop_fps']:.0f} fps = **{fruit['ratios']['loop_fps_over_classify_fps']:.2f}x** "
                  f"the classify-only rate; all stages in one thread {fp['fps']:.0f} fps = "
                  f"{fruit['ratios']['serial_fps_over_classify_fps']:.2f}x; ms per stage: capture "
                  f"{fp['capture_ms']:.2f}, explain {fp['explain_ms']:.2f}, overlay {fp['overlay_ms']:.2f}, "
                  f"JPEG {fp['jpeg_ms']:.2f}."]
    lines += ["", "Targets (issue 6):", ""]
    for t in report["targets"]:
        lines.append(f"- {'met' if t['met'] else '**not met**'}: {t['target']}, {t['model']}: {t['value']:.2f}")
    return "\n".join(lines)


README_BEGIN, README_END = "<!-- bench:begin -->", "<!-- bench:end -->"


def update_readme(path: Path, text: str) -> None:
    """Replace the block between the README's bench markers with the latest table."""
    readme = path.read_text()
    if README_BEGIN not in readme or README_END not in readme:
        raise RuntimeError(f"{path}: no {README_BEGIN} ... {README_END} block to put the table in")
    head, rest = readme.split(README_BEGIN, 1)
    _, tail = rest.split(README_END, 1)
    path.write_text(f"{head}{README_BEGIN}\n{text}\n{README_END}{tail}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer repeats, one round (a smoke run, noisier figures)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, help="rounds of every contender (default 3; 1 with --quick)")
    p.add_argument("--json", type=Path, help="write the full report here")
    p.add_argument("--readme", type=Path, help=f"put the table into this file's {README_BEGIN} block")
    add_common(p)
    args = p.parse_args(argv)
    setup_logging(args.debug)
    repeats = 30 if args.quick else 300
    rounds = args.rounds or (1 if args.quick else 3)
    with one_line_errors(args.debug, RuntimeError, subprocess.CalledProcessError) as status:
        work = REPO / "build" / "bench"
        calibration, compare = frame_sets(work)
        peak = machine_peak(args.threads)
        models = [bench_model("fruit (shipped)", *FRUIT, args.threads, repeats, rounds, frame_path=True)]
        models[0]["int8"] = bench_int8(FRUIT[0], int8_bundle(FRUIT[1], FRUIT[0], work / "fruit-int8", calibration),
                                       args.threads, repeats, compare)
        mobilenet = mobilenet_bundle(work)
        models.append(bench_model("MobileNetV2-224 GAP", *mobilenet, args.threads, max(10, repeats // 5), rounds,
                                  frame_path=False))
        # random weights: speed only (agreement of two random models' top-1 says nothing)
        models[1]["int8"] = bench_int8(mobilenet[0], int8_bundle(mobilenet[1], mobilenet[0],
                                                                 work / "mobilenetv2_224-int8", calibration),
                                       args.threads, max(10, repeats // 5), None)
        peak = max(peak, machine_peak(args.threads))  # the best of a measurement before and after
        for m in models:
            add_ceiling(m, peak)
        report: dict[str, Any] = {
            "date": datetime.now(UTC).strftime("%Y-%m-%d"), "threads": args.threads, "rounds": rounds,
            "machine_peak_gflop_per_s": peak,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
            "models": models}
        report["targets"] = targets(report)
        if args.json:
            args.json.write_text(json.dumps(report, indent=2) + "\n")
        text = table(report)
        if args.readme:
            update_readme(args.readme, text)
        print(text)
    return status.code


if __name__ == "__main__":
    raise SystemExit(main())
