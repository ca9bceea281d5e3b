"""tools/bench's workers print the figures the benchmark table is made of (no timing assertions: machines are noisy)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import REPO, run_python

from edge.cam import METHODS

pytestmark = pytest.mark.slow


def test_edge_worker_measures_every_method_and_the_frame_path() -> None:
    proc = run_python("-m", "tools.bench_edge", str(REPO / "models" / "fruit"), "--repeats", "5", "--frame-path")
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(report["explain_ms"]) == set(METHODS)  # the shipped model has a GAP head, so cam is measured too
    assert all(v > 0 for v in report["explain_ms"].values()) and report["classify_ms"] > 0
    assert report["frame_path"]["frame_size"] == [640, 480] and report["frame_path"]["fps"] > 0


def test_tensorflow_worker_and_cold_start(tmp_path: Path) -> None:
    from tools.bench import cold_start

    proc = run_python("-m", "tools.bench_tf", str(REPO / "models" / "fruit.keras"), "bn4", "--repeats", "3")
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["eager_ms"] > 0 and report["function_ms"] > 0
    start = cold_start(["-m", "tools.bench_edge", str(REPO / "models" / "fruit"), "--first-only"])
    assert start["seconds"] > 0 and start["peak_rss_mb"] > 10
