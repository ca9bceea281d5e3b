"""The bench report: medians over rounds, the targets judged, the markdown table and the block it fills in a page."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any


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


TARGETS: tuple[tuple[str, str, str, float], ...] = (
    # (label, ratio key, comparison, bound); a key "view.ratio" is read from that thread view's ratios
    ("Grad-CAM explain <= 1.03x classify-only", "gradcam_over_classify", "<=", 1.03),
    ("tf.function Grad-CAM >= 3x slower than explain", "tf_function_over_edge", ">=", 3.0),
    ("eager GradientTape Grad-CAM >= 20x slower than explain", "tf_eager_over_edge", ">=", 20.0),
    ("edge peak RSS <= 1/5 of TensorFlow's", "edge_rss_over_tf", "<=", 0.2),
    ("edge cold start <= 1/3 of TensorFlow's", "edge_cold_start_over_tf", "<=", 1 / 3),
    ("640x480 frame path (device loop) >= 0.6x classify-only fps", "loop_fps_over_classify_fps", ">=", 0.6),
)
# Issue 25, judged per head form: (label, models, threads: "1" or "all", bound on explain / classify)
HEAD_TARGETS: tuple[tuple[str, tuple[str, ...], str, float], ...] = (
    ("Grad-CAM explain <= 1.02x classify at 1 thread", ("flatten_cnn", "mobilenetv2_224"), "1", 1.02),
    ("Grad-CAM explain <= 1.04x classify at all cores", ("flatten_cnn", "mobilenetv2_224"), "all", 1.04),
)


def _ratio(ratios: dict[str, Any], key: str) -> float | None:
    for part in key.split("."):
        if not isinstance(ratios, dict) or part not in ratios:
            return None
        ratios = ratios[part]
    return float(ratios)  # type: ignore[arg-type]


def targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target, per model (and head form) where it was measured, met or not."""
    rows = []
    for label, key, op, bound in TARGETS:
        for m in report["models"]:
            value = _ratio(m["ratios"], key)
            if value is not None:
                rows.append({"target": label, "model": m["model"], "value": value,
                             "met": value <= bound if op == "<=" else value >= bound})
    all_cores = max(f["threads"] for f in report.get("head_forms", [{"threads": 1}]))
    for label, names, threads, bound in HEAD_TARGETS:
        wanted = 1 if threads == "1" else all_cores
        for f in report.get("head_forms", []):
            if f["model"] in names and f["threads"] == wanted:
                rows.append({"target": label, "model": f"{f['model']} ({f['head']})", "value": f["ratio"],
                             "met": f["ratio"] <= bound})
    return rows


def table(report: dict[str, Any]) -> str:
    load = report.get("load_average", {})
    busy = (f" (load average {load['start'][0]:.1f} at the start, {load['end'][0]:.1f} at the end: a shared machine)"
            if load else "")
    lines = [f"Measured {report['date']} on {report['machine']}{busy}, medians of {report['rounds']} round(s) (each "
             f"round runs every contender back to back). **Equal threads, 1 thread for every contender:**", "",
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
    lines += thread_views(report) + head_forms(report) + sweep(report)
    lines += ["", "Targets:", ""]
    for t in report["targets"]:
        lines.append(f"- {'met' if t['met'] else '**not met**'}: {t['target']}, {t['model']}: {t['value']:.2f}")
    return "\n".join(lines)


README_BEGIN, README_END = "<!-- bench:begin -->", "<!-- bench:end -->"


def update_readme(path: Path, text: str) -> None:
    """Replace the block between the file's bench markers with the latest table."""
    readme = path.read_text()
    if README_BEGIN not in readme or README_END not in readme:
        raise RuntimeError(f"{path}: no {README_BEGIN} ... {README_END} block to put the table in")
    head, rest = readme.split(README_BEGIN, 1)
    _, tail = rest.split(README_END, 1)
    path.write_text(f"{head}{README_BEGIN}\n{text}\n{README_END}{tail}")


def thread_views(report: dict[str, Any]) -> list[str]:
    """Grad-CAM against classify and TensorFlow at all cores (equal threads) and at each side's defaults."""
    models = report["models"]
    if "all_cores" not in models[0]:
        return []
    cpus = report.get("cpus", "all")
    lines = ["", f"**Equal threads, all {cpus} cores** (both sides told {cpus}), and **defaults** (what a user gets: "
             f"edge-explainer's threads = \"auto\", every CPU of its affinity mask; TensorFlow's own thread pools):",
             "", "| | " + " | ".join(m["model"] for m in models) + " |", "| --- |" + " --- |" * len(models)]
    for view, title in (("all_cores", f"{cpus} threads each"), ("defaults", "defaults")):
        def cell(m: dict[str, Any], view: str = view) -> str:
            e, t, r = m[view]["edge"], m[view]["tensorflow"], m["ratios"][view]
            return (f"{e['classify_ms']:.2f} / {e['explain_ms']['gradcam']:.2f} ({r['gradcam_over_classify']:.2f}x) "
                    f"/ {t['function_ms']:.2f} ({r['tf_function_over_edge']:.1f}x)")
        lines.append(f"| {title}: edge classify / edge Grad-CAM (x classify) / TF tf.function Grad-CAM (x edge), ms | "
                     + " | ".join(cell(m) for m in models) + " |")
    return lines


def head_forms(report: dict[str, Any]) -> list[str]:
    """Explain's per-frame tail over classify, per head form and thread count."""
    forms = report.get("head_forms", [])
    if not forms:
        return []
    rounds = forms[0].get("rounds")
    lines = ["", "Grad-CAM's cost over classify-only per head form (frames of the model's input size; classify and "
             "explain timed call by call in turn; medians of per-round medians"
             + (f" over {rounds} rounds, and the rounds' lowest and highest ratio" if rounds else "") + "):", "",
             "| model | head (after the target layer) | threads | classify, ms | explain, ms | tail, us | x classify "
             "(rounds' range) | 10th percentiles: tail, us / x classify |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for f in forms:
        spread = f" ({f['ratio_range'][0]:.3f}-{f['ratio_range'][1]:.3f})" if "ratio_range" in f else ""
        lines.append(f"| {f['model']} | {f['head']} | {f['threads']} | {f['classify_ms']:.3f} | {f['explain_ms']:.3f} "
                     f"| {f['tail_us']:.0f} | {f['ratio']:.3f}{spread} | {f['p10_tail_us']:.0f} / "
                     f"{f['p10_ratio']:.3f} |")
    return lines


def sweep(report: dict[str, Any]) -> list[str]:
    rows = report.get("thread_sweep", [])
    if not rows:
        return []
    cells = ", ".join(f"{r['threads']} thread(s) {r['loop_fps']:.0f} fps (classify {r['classify_ms']:.2f} ms)"
                      for r in rows)
    return ["", f"Device loop (fruit (shipped), 640x480, capture + explain + drawing/JPEG sink threads) by TFLite "
            f"threads: {cells}."]
