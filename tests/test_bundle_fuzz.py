"""Mutated bundles (truncated, bit-flipped, swapped members, crafted head.npz and manifests, checksums updated to
match) are opened in a subprocess: every one is loaded or refused with a BundleError, none crashes natively."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, run_python

DEMO = REPO / "models" / "fruit"
# tflite-runtime maps the file without verifying it (the runtime that crashed); LiteRT verifies on its own.
RUNTIME = "tflite_runtime" if importlib.util.find_spec("tflite_runtime") else "ai_edge_litert"


def test_no_mutated_bundle_crashes_or_tracebacks(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run([sys.executable, str(REPO / "tests" / "bundle_mutations.py"), str(DEMO), str(tmp_path),
                           "39", "160", RUNTIME], env=env, capture_output=True, text=True, timeout=300, check=False)
    tail = (proc.stdout + proc.stderr)[-3000:]
    assert proc.returncode == 0, f"exit {proc.returncode} (a negative one is a signal):\n{tail}"
    assert "Traceback" not in proc.stdout + proc.stderr, tail
    lines = [line for line in proc.stdout.splitlines() if ": " in line]
    assert len(lines) >= 170 and all(line.endswith(": ok") or ": refused: " in line for line in lines), tail
    refused = {line.split(": refused: ")[0] for line in lines if ": refused: " in line}
    assert {"128 TiB array", "manifest files ..", "wrong kernel shape", "spec nested"} <= refused, tail


@pytest.mark.parametrize("case", ["truncated features", "nested manifest"])
def test_check_config_refuses_a_crafted_bundle_in_one_line(tmp_path: Path, case: str) -> None:
    from bundle_mutations import crafted, rehash

    bundle = tmp_path / "b"
    shutil.copytree(DEMO, bundle)
    if case == "truncated features":
        (bundle / "features.tflite").write_bytes((DEMO / "features.tflite").read_bytes()[:20000])
        rehash(bundle)
    else:
        dict(crafted())["manifest nested"](bundle)
    proc = run_python("-m", "edge", "run", "--check-config", "--model", str(bundle), "--runtime", RUNTIME,
                      "--source", "synthetic", timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("edge: error:") and "Traceback" not in proc.stderr, proc.stderr
