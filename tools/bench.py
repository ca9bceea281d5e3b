"""Side-by-side benchmark: the device's explain against its classify-only floor and TensorFlow Grad-CAM.

    python -m tools.bench [--quick] [--threads 1] [--json PATH]

Every contender runs in its own subprocess with the same thread count (TensorFlow and the TFLite runtimes do not share
a process well), on the shipped fruit bundle and on a MobileNetV2-224 GAP-head bundle (random weights: timing only).
Medians over repeated calls; every ratio is computed from figures of this one run. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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
    if not (bundle / "manifest.json").exists():
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
    ceiling a convolution (an im2col GEMM, as XNNPACK and oneDNN do it) can approach."""
    code = ("import time, numpy as np; n = 1024; a = np.random.rand(n, n).astype(np.float32); b = a.T.copy(); "
            "[a @ b for _ in range(3)]; ts = []\n"
            "for _ in range(15):\n t = time.perf_counter(); a @ b; ts.append(time.perf_counter() - t)\n"
            "print(2 * n ** 3 / np.median(ts) / 1e9)")
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


def int8_bundle(model: Path, bundle: Path, out: Path, calibration: Path) -> Path:
    """The float bundle's model exported again with full-integer features (same target, score and preprocessing)."""
    if not (out / "manifest.json").exists():
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


def bench_model(name: str, bundle: Path, model: Path, threads: int, repeats: int, frame_path: bool) -> dict[str, Any]:
    manifest = json.loads((bundle / "manifest.json").read_text())
    common = ["--threads", str(threads)]
    edge = _run_json(["-m", "tools.bench_edge", str(bundle), *common, "--repeats", str(repeats),
                      *(["--frame-path"] if frame_path else [])])
    other = _run_json(["-m", "tools.bench_edge", str(bundle), *common, "--repeats", str(repeats),
                       "--runtime", "tflite_runtime"])
    tf = _run_json(["-m", "tools.bench_tf", str(model), manifest["target_layer"], *common,
                    "--repeats", str(max(10, repeats // 4))])
    floor, gradcam = edge["classify_ms"], edge["explain_ms"]["gradcam"]
    return {
        "model": name, "edge": edge, "tflite_runtime": other, "tensorflow": tf,
        "gflops": manifest["features"]["flops"] / 1e9,
        "achieved_gflop_per_s": manifest["features"]["flops"] / 1e9 / (edge["features_ms"] / 1e3),
        "ratios": {
            "gradcam_over_classify": gradcam / floor,
            "method_over_classify": {m: v / floor for m, v in edge["explain_ms"].items()},
            "tf_function_over_edge": tf["function_ms"] / gradcam,
            "tf_eager_over_edge": tf["eager_ms"] / gradcam,
            "litert_over_tflite_runtime_classify": edge["classify_ms"] / other["classify_ms"],
        },
        "cold_start": {
            "edge": cold_start(["-m", "tools.bench_edge", str(bundle), *common, "--first-only"]),
            "tensorflow": cold_start(["-m", "tools.bench_tf", str(model), manifest["target_layer"], *common,
                                      "--first-only"]),
        },
    }


def table(report: dict[str, Any]) -> str:
    lines = [f"Measured {report['date']} on {report['machine']}, {report['threads']} thread(s), medians.", "",
             "| | " + " | ".join(r["model"] for r in report["models"]) + " |",
             "| --- |" + " --- |" * len(report["models"])]

    def row(label: str, fn: Any) -> None:
        lines.append(f"| {label} | " + " | ".join(fn(r) for r in report["models"]) + " |")

    row("classify-only (floor), ms", lambda r: f"{r['edge']['classify_ms']:.2f}")
    for m in report["models"][0]["edge"]["explain_ms"]:
        row(f"explain {m}, ms (x floor)", lambda r, m=m: f"{r['edge']['explain_ms'][m]:.2f} "
            f"({r['ratios']['method_over_classify'][m]:.2f}x)" if m in r["edge"]["explain_ms"] else "n/a")
    row("TF tf.function Grad-CAM, ms (x edge)", lambda r: f"{r['tensorflow']['function_ms']:.2f} "
        f"({r['ratios']['tf_function_over_edge']:.1f}x)")
    row("TF eager GradientTape Grad-CAM, ms (x edge)", lambda r: f"{r['tensorflow']['eager_ms']:.1f} "
        f"({r['ratios']['tf_eager_over_edge']:.1f}x)")
    row("classify: ai-edge-litert / tflite-runtime, ms", lambda r: f"{r['edge']['classify_ms']:.2f} / "
        f"{r['tflite_runtime']['classify_ms']:.2f}")
    row("int8 features: classify / explain gradcam, ms", lambda r: f"{r['int8']['edge']['classify_ms']:.2f} / "
        f"{r['int8']['edge']['explain_ms']['gradcam']:.2f}")
    row("int8 vs float: top-1 agreement / map correlation", lambda r: (
        f"{r['int8']['agreement']['top1_agreement']:.1%} / {r['int8']['agreement']['cam_correlation']:.2f} "
        f"({r['int8']['agreement']['images']:.0f} frames)") if "agreement" in r["int8"] else "n/a (random weights)")
    peak = report["machine_peak_gflop_per_s"]
    row(f"feature model GFLOP/s (machine: {peak:.0f}, float32 GEMM)", lambda r: f"{r['achieved_gflop_per_s']:.1f} "
        f"({r['achieved_gflop_per_s'] / peak:.0%})")
    row("TF tf.function classify-only, ms", lambda r: f"{r['tensorflow']['function_classify_ms']:.2f}")
    for side in ("edge", "tensorflow"):
        row(f"cold start {side}, s / peak RSS MB", lambda r, s=side: f"{r['cold_start'][s]['seconds']:.2f} / "
            f"{r['cold_start'][s]['peak_rss_mb']:.0f}")
    fruit = report["models"][0]
    if "frame_path" in fruit["edge"]:
        fp = fruit["edge"]["frame_path"]
        floor_fps = 1e3 / fruit["edge"]["classify_ms"]
        lines += ["", f"Whole frame path ({fruit['model']}, 640x480 synthetic frames; classify-only: {floor_fps:.0f} "
                  f"fps): the device's loop (capture thread, explain thread, a sink thread drawing and JPEG-encoding "
                  f"every frame) {fp['loop_fps']:.0f} fps = **{fp['loop_fps'] / floor_fps:.2f}x** the classify-only "
                  f"rate; all stages in one thread {fp['fps']:.0f} fps = {fp['fps'] / floor_fps:.2f}x; ms per stage: "
                  f"capture {fp['capture_ms']:.2f}, explain {fp['explain_ms']:.2f}, overlay {fp['overlay_ms']:.2f}, "
                  f"JPEG {fp['jpeg_ms']:.2f}."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run, noisier figures)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path, help="write the full report here")
    add_common(p)
    args = p.parse_args(argv)
    setup_logging(args.debug)
    repeats = 30 if args.quick else 300
    with one_line_errors(args.debug, RuntimeError, subprocess.CalledProcessError) as status:
        work = REPO / "build" / "bench"
        calibration, compare = frame_sets(work)
        models = [bench_model("fruit (shipped)", *FRUIT, args.threads, repeats, frame_path=True)]
        models[0]["int8"] = bench_int8(FRUIT[0], int8_bundle(FRUIT[1], FRUIT[0], work / "fruit-int8", calibration),
                                       args.threads, repeats, compare)
        mobilenet = mobilenet_bundle(work)
        models.append(bench_model("MobileNetV2-224 GAP", *mobilenet, args.threads, max(10, repeats // 5),
                                  frame_path=False))
        # random weights: speed only (agreement of two random models' top-1 says nothing)
        models[1]["int8"] = bench_int8(mobilenet[0], int8_bundle(mobilenet[1], mobilenet[0],
                                                                 work / "mobilenetv2_224-int8", calibration),
                                       args.threads, max(10, repeats // 5), None)
        report = {"date": datetime.now(UTC).strftime("%Y-%m-%d"), "threads": args.threads,
                  "machine_peak_gflop_per_s": machine_peak(args.threads),
                  "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
                  "models": models}
        if args.json:
            args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(table(report))
    return status.code


if __name__ == "__main__":
    raise SystemExit(main())
