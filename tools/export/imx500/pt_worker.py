"""Runs inside Sony's PyTorch IMX500 venv (./scripts/imx500-venv --pytorch: torch, MCT, imx500-converter[pt]).

Started as a script by tools/export/imx500/toolchain.py, so it imports nothing of this project. `convert WORKDIR` loads
the trunk (WORKDIR/trunk.pt, a torch.fx module saved by tools/export/imx500/torch_carry.py), checks it against the
workstation's outputs in probe.npz, quantises it with MCT for the IMX500 (TPC 4.0) on calibration.npz, exports MCT's
ONNX, converts it with imxconv-pt and writes WORKDIR/result.json; `simulate MODEL INPUTS OUT` runs MCT's ONNX.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

TPC_VERSION = "4.0"  # as for Keras: 1.0 (MCT's default) leaves a BatchNorm after a ReLU unquantised
AGREE_ATOL = 1e-4  # relative to the largest |A|: the same torch release on both sides, so rounding at most
ACTIVATION_QUANTISER = "ActivationPOTQuantizer"


class WorkerError(Exception):
    """One line for the workstation side to show the user."""


def _load_trunk(path: Path) -> Any:
    import torch

    try:
        return torch.load(path, weights_only=False).eval()
    except (ImportError, AttributeError, RuntimeError) as e:
        raise WorkerError(f"the trunk does not load in this venv's torch {torch.__version__}: "
                          f"{type(e).__name__}: {e}") from e


def _check_agreement(model: Any, probe: Any) -> float:
    import torch

    with torch.no_grad():
        got = model(torch.from_numpy(probe["x"])).numpy()  # (n, k, h', w') float32
    want = probe["y"]
    if got.shape != want.shape:
        raise WorkerError(f"the trunk gives {got.shape} here, {want.shape} on the workstation")
    worst = float(np.max(np.abs(got - want)) / max(float(np.max(np.abs(want))), 1e-12))
    if worst > AGREE_ATOL:
        raise WorkerError(f"the trunk loaded in Sony's venv disagrees with the workstation's (max |diff| {worst:.2g} "
                          f"of max |A|)")
    return worst


def _quantise(model: Any, x: Any) -> tuple[Any, Any]:
    """MCT's PTQ for the IMX500 on x (n, c, h, w) float32; (quantised model, its representative dataset)."""
    import model_compression_toolkit as mct
    import torch
    from edgemdt_tpc import get_target_platform_capabilities

    tpc = get_target_platform_capabilities(tpc_version=TPC_VERSION, device_type="imx500")

    def representative() -> Iterator[list[Any]]:
        for i in range(0, len(x), 8):
            yield [torch.from_numpy(x[i:i + 8])]

    quantised, _ = mct.ptq.pytorch_post_training_quantization(model, representative,
                                                              target_platform_capabilities=tpc)
    return quantised, representative


def _export(quantised: Any, representative: Any, path: Path) -> None:
    """MCT's ONNX (MCTQ quantiser ops) through torch's TorchScript-based exporter: since torch 2.9 the default is the
    dynamo exporter, which needs onnxscript (not in Sony's pins); MCT 2.5.1 does not choose."""
    import model_compression_toolkit as mct
    import torch

    original = torch.onnx.export
    torch.onnx.export = functools.partial(original, dynamo=False)
    try:
        mct.exporter.pytorch_export_model(quantised, save_model_path=str(path), repr_dataset=representative)
    finally:
        torch.onnx.export = original


def _activation_quantisation(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(input, output) quantisation of MCT's ONNX: its first and last activation quantiser nodes."""
    import onnx

    nodes = [n for n in onnx.load(str(path)).graph.node if n.op_type == ACTIVATION_QUANTISER]
    if not nodes:
        raise WorkerError(f"{path.name}: MCT's export has no activation quantisers")

    def scale(node: Any) -> dict[str, Any]:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        bits, signed, threshold = int(attrs["num_bits"]), bool(attrs["signed"]), float(attrs["threshold"])
        return {"scale": threshold / 2 ** (bits - int(signed)), "bits": bits, "signed": signed,
                "threshold": threshold}

    return scale(nodes[0]), scale(nodes[-1])


def _convert(onnx_path: Path, out_dir: Path) -> str:
    """imxconv-pt on MCT's ONNX: packerOut.zip and the memory report in out_dir; returns the converter's log."""
    exe = Path(sys.executable).with_name("imxconv-pt")
    if shutil.which("java") is None:
        raise WorkerError("imxconv-pt needs `java` on PATH (apt install default-jre-headless)")
    proc = subprocess.run([str(exe), "-i", str(onnx_path), "-o", str(out_dir), "--overwrite-output"],
                          capture_output=True, text=True, check=False)
    log = proc.stdout + proc.stderr
    (out_dir / "converter.log").write_text(log, encoding="utf-8")
    if proc.returncode != 0 or not (out_dir / "packerOut.zip").is_file():
        errors = [line for line in log.splitlines() if "error" in line.lower()] or log.strip().splitlines()[-1:]
        raise WorkerError(f"imxconv-pt failed: {errors[-1] if errors else 'exit ' + str(proc.returncode)}")
    return log


def convert(workdir: Path) -> dict[str, Any]:
    import model_compression_toolkit as mct
    import torch

    model = _load_trunk(workdir / "trunk.pt")
    worst = _check_agreement(model, np.load(workdir / "probe.npz"))
    quantised, representative = _quantise(model, np.load(workdir / "calibration.npz")["x"])
    out = workdir / "out"
    out.mkdir(exist_ok=True)
    onnx_path = out / "trunk_mct.onnx"
    _export(quantised, representative, onnx_path)
    in_q, out_q = _activation_quantisation(onnx_path)
    log = _convert(onnx_path, out)
    version = subprocess.run([str(Path(sys.executable).with_name("imxconv-pt")), "--version"],
                             capture_output=True, text=True, check=False).stdout.strip()
    return {"agreement_max_rel": worst, "input_quantization": in_q, "output_quantization": out_q,
            "converter_log": log, "torch": torch.__version__, "mct": mct.__version__,
            "converter": version, "tpc_version": TPC_VERSION}


def simulate(model_path: Path, inputs: Path, out: Path) -> None:
    """MCT's ONNX on the workstation (onnxruntime with MCT's quantiser ops): inputs.npz x (n, h, w, c) NHWC ->
    out.npz a (n, h', w', k) NHWC, as the Keras worker gives."""
    import onnxruntime as ort
    from mct_quantizers import get_ort_session_options

    session = ort.InferenceSession(str(model_path), get_ort_session_options(), providers=["CPUExecutionProvider"])
    x = np.ascontiguousarray(np.load(inputs)["x"].transpose(0, 3, 1, 2), np.float32)  # (n, c, h, w)
    name = session.get_inputs()[0].name
    a = np.concatenate([session.run(None, {name: x[i:i + 16]})[0] for i in range(0, len(x), 16)])
    np.savez(out, a=np.ascontiguousarray(a.transpose(0, 2, 3, 1), np.float32))


def main() -> int:
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


if __name__ == "__main__":
    raise SystemExit(main())
