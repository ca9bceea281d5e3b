"""What Sony's two converter routes share inside their venvs (sony_worker.py for Keras, pt_worker.py for PyTorch).

Both run as modules from the checkout (`VENV/bin/python -m tools.export.imx500.sony_worker`) in Sony's venvs, so
this uses only the standard library and NumPy: nothing else of this project, nothing of either framework.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

TPC_VERSION = "4.0"  # 1.0 (MCT's default) leaves a BatchNorm after a ReLU unquantised; the converter refuses it


class WorkerError(Exception):
    """One line for the workstation side to show the user."""


def agreement(got: Any, want: Any, atol: float, moved: str) -> float:
    """The largest |got - want| relative to the largest |want|; WorkerError (naming what MOVED) above atol."""
    if got.shape != want.shape:
        raise WorkerError(f"the trunk gives {got.shape} here, {want.shape} on the workstation")
    worst = float(np.max(np.abs(got - want)) / max(float(np.max(np.abs(want))), 1e-12))
    if worst > atol:
        raise WorkerError(f"{moved} (max |diff| {worst:.2g} of max |A|)")
    return worst


def pot_scale(bits: int, signed: bool, threshold: float) -> dict[str, Any]:
    """real = scale * q for MCT's power-of-two activation quantiser (threshold t, n bits)."""
    return {"scale": threshold / 2 ** (bits - int(signed)), "bits": bits, "signed": signed, "threshold": threshold}


def run_converter(name: str, model_path: Path, out_dir: Path) -> tuple[str, str]:
    """Sony's converter NAME (imxconv-tf / imxconv-pt) on MCT's export: packerOut.zip and the memory report in
    out_dir; (its log, its version)."""
    exe = Path(sys.executable).with_name(name)
    if shutil.which("java") is None:
        raise WorkerError(f"{name} needs `java` on PATH (apt install default-jre-headless)")
    proc = subprocess.run([str(exe), "-i", str(model_path), "-o", str(out_dir), "--overwrite-output"],
                          capture_output=True, text=True, check=False)
    log = proc.stdout + proc.stderr
    (out_dir / "converter.log").write_text(log, encoding="utf-8")
    if proc.returncode != 0 or not (out_dir / "packerOut.zip").is_file():
        errors = [line for line in log.splitlines() if "error" in line.lower()] or log.strip().splitlines()[-1:]
        raise WorkerError(f"{name} failed: {errors[-1] if errors else 'exit ' + str(proc.returncode)}")
    version = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=False).stdout.strip()
    return log, version


def convert_and_report(name: str, exported: Path, quantisation: tuple[dict[str, Any], dict[str, Any]], worst: float,
                       versions: dict[str, str]) -> dict[str, Any]:
    """Converter NAME on MCT's EXPORTED model (beside it: packerOut.zip, the memory report); result.json's content."""
    log, converter = run_converter(name, exported, exported.parent)
    return {"agreement_max_rel": worst, "input_quantization": quantisation[0], "output_quantization": quantisation[1],
            "converter_log": log, **versions, "converter": converter, "tpc_version": TPC_VERSION}


def main(convert: Callable[[Path], dict[str, Any]], simulate: Callable[[Path, Path, Path], None]) -> int:
    """`convert WORKDIR` (writes WORKDIR/result.json) or `simulate MODEL INPUTS OUT`; a WorkerError is one line."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("convert").add_argument("workdir", type=Path)
    s = sub.add_parser("simulate")
    for name in ("model", "inputs", "out"):
        s.add_argument(name, type=Path)
    args = p.parse_args()
    try:
        if args.command == "convert":
            result = convert(args.workdir)
            (args.workdir / "result.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
        else:
            simulate(args.model, args.inputs, args.out)
    except WorkerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0
