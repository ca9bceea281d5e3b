"""tools/bench's workers print the figures the benchmark table is made of (no timing assertions: machines are noisy)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import REPO, run_python

from edge.explain.cam import METHODS, TRUNK_PASS_METHODS

pytestmark = pytest.mark.slow


def test_edge_worker_measures_every_method_and_the_frame_path() -> None:
    proc = run_python("-m", "tools.bench.edge_side", str(REPO / "models" / "fruit"), "--repeats", "5", "--frame-path")
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    # the shipped model has a GAP head, so cam is measured too; the trunk-pass methods in tools.bench.cam_methods
    assert set(report["explain_ms"]) == set(METHODS) - set(TRUNK_PASS_METHODS)
    assert all(v > 0 for v in report["explain_ms"].values()) and report["classify_ms"] > 0
    path = report["frame_path"]
    assert path["frame_size"] == [640, 480] and path["fps"] > 0 and path["loop_fps"] > 0


def test_tensorflow_worker_and_cold_start(tmp_path: Path) -> None:
    from tools.bench.processes import cold_start

    proc = run_python("-m", "tools.bench.tf_side", str(REPO / "models" / "fruit.keras"), "bn4", "--repeats", "3")
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["eager_ms"] > 0 and report["function_ms"] > 0
    start = cold_start(["-m", "tools.bench.edge_side", str(REPO / "models" / "fruit"), "--first-only"])
    assert start["seconds"] > 0 and start["peak_rss_mb"] > 10


def test_int8_comparison_worker() -> None:
    """The float bundle against itself: full agreement and correlation 1 (the int8 figures come from the same code)."""
    fruit = str(REPO / "models" / "fruit")
    proc = run_python("-m", "tools.bench.edge_side", fruit, "--compare", fruit, "--images", str(REPO / "samples"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["images"] == 12 and report["top1_agreement"] == 1.0
    assert report["cam_correlation"] == pytest.approx(1.0, abs=1e-6)


XEON = """processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 207
model name\t: INTEL(R) XEON(R) PLATINUM 8581C CPU @ 2.10GHz
flags\t\t: fpu sse2 avx avx2 avx512f avx512_vnni amx_bf16 amx_tile
processor\t: 1
model name\t: another CPU
"""
PI4 = """processor\t: 0
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm crc32 cpuid
CPU implementer\t: 0x41
CPU part\t: 0xd08
Hardware\t: BCM2835
Model\t\t: Raspberry Pi 4 Model B Rev 1.4
"""


def test_the_report_names_the_cpu_its_figures_were_measured_on() -> None:
    from tools.bench.processes import cpu_name

    assert cpu_name(XEON) == ("INTEL(R) XEON(R) PLATINUM 8581C CPU @ 2.10GHz (family 6, model 207), "
                              "avx2 avx512f avx512_vnni amx_tile")
    assert cpu_name(PI4) == "Raspberry Pi 4 Model B Rev 1.4"
    assert cpu_name()  # this machine's, whatever it is


def test_medians_over_rounds_and_the_readme_block(tmp_path: Path) -> None:
    from tools.bench.report import README_BEGIN, README_END, median_of, update_readme

    rounds = [{"a": 1.0, "n": {"b": 3}, "s": "x", "flag": True}, {"a": 5.0, "n": {"b": 1}, "s": "y", "flag": False},
              {"a": 2.0, "n": {"b": 2}, "s": "z", "flag": False}]
    assert median_of(rounds) == {"a": 2.0, "n": {"b": 2.0}, "s": "x", "flag": True}
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{README_BEGIN}\nold table\n{README_END}\nafter\n")
    update_readme(readme, "| new |")
    assert readme.read_text() == f"intro\n{README_BEGIN}\n| new |\n{README_END}\nafter\n"
    (tmp_path / "bare.md").write_text("no block\n")
    with pytest.raises(RuntimeError, match="no <!-- bench:begin -->"):
        update_readme(tmp_path / "bare.md", "| new |")


def test_bench_quick_writes_the_report_and_the_table(tmp_path: Path) -> None:
    """What CI runs of the benchmark: --quick end to end (figures are printed, never asserted on)."""
    from edge.explain.runtime import available_cpus
    from tools.bench.bundles import HEAD_FORMS
    from tools.bench.report import HEAD_TARGETS, TARGETS

    out = tmp_path / "bench.json"
    readme = tmp_path / "README.md"
    readme.write_text("# x\n<!-- bench:begin -->\n<!-- bench:end -->\n")
    proc = run_python("-m", "tools.bench", "--quick", "--json", str(out), "--readme", str(readme), timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["machine_peak_gflop_per_s"] > 0 and [m["model"] for m in report["models"]] == [
        "fruit (shipped)", "MobileNetV2-224 GAP"]
    fruit, mobilenet = report["models"]
    for m in report["models"]:
        assert m["tensorflow"]["function_ms"] > 0 and m["tensorflow"]["function_classify_ms"] > 0
        assert m["int8"]["edge"]["classify_ms"] > 0 and m["cold_start"]["edge"]["peak_rss_mb"] > 0
    assert 0.5 <= fruit["int8"]["agreement"]["top1_agreement"] <= 1.0 and "agreement" not in mobilenet["int8"]
    assert fruit["edge"]["frame_path"]["loop_fps"] > 0
    table = proc.stdout
    assert "int8 vs float" in table and "GEMM peak" in table and "frame path" in table.lower()
    assert table.strip() in readme.read_text()
    assert {t["target"] for t in report["targets"]} == {label for label, *_ in (*TARGETS, *HEAD_TARGETS)}
    model_targets = {label: key for label, key, *_ in TARGETS}
    for t in report["targets"]:  # every target judged on the report's own ratio
        if t["target"] in model_targets:
            assert t["value"] == next(m for m in report["models"] if m["model"] == t["model"])["ratios"][
                model_targets[t["target"]]]
        else:
            assert t["value"] in {f["ratio"] for f in report["head_forms"] if t["model"].startswith(f["model"])}
    cpus = available_cpus()
    for m in report["models"]:  # both views: equal threads at all cores, and each side's defaults
        for view in ("all_cores", "defaults"):
            assert m[view]["edge"]["explain_ms"]["gradcam"] > 0 and m[view]["tensorflow"]["function_ms"] > 0
        assert m["all_cores"]["edge"]["threads"] == cpus and m["defaults"]["edge"]["threads"] == cpus
    forms = {(f["model"], f["threads"]) for f in report["head_forms"]}
    assert forms == {(name, t) for name in ("fruit (shipped)", *HEAD_FORMS) for t in {1, cpus}}
    for f in report["head_forms"]:  # the median and the rounds' spread around it (one round with --quick)
        low, high = f["ratio_range"]
        assert f["rounds"] == 1 and low <= f["ratio"] <= high
    assert [r["threads"] for r in report["thread_sweep"]] == list(range(1, cpus + 1))
    assert "per head form" in table and "Equal threads" in table and "defaults" in table
    assert fruit["ratios"]["tf_function_over_features_at_peak"] > 0 and fruit["rounds"] == 1
    print(table)
