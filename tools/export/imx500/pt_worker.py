"""Runs inside Sony's PyTorch IMX500 venv (./scripts/imx500-venv --pytorch: torch, MCT, imx500-converter[pt]).

Started as a module by tools/export/imx500/toolchain.py (as sony_worker.py); of this project it imports only
worker_common. `convert WORKDIR` loads
the trunk (WORKDIR/trunk.pt, a torch.fx module saved by tools/export/imx500/torch_carry.py), checks it against the
workstation's outputs in probe.npz, quantises it with MCT for the IMX500 (TPC 4.0) on calibration.npz, exports MCT's
ONNX, converts it with imxconv-pt and writes WORKDIR/result.json; `simulate MODEL INPUTS OUT` runs MCT's ONNX.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from tools.export.imx500.worker_common import TPC_VERSION, WorkerError, agreement, convert_and_report, main, pot_scale

AGREE_ATOL = 1e-4  # relative to the largest |A|: the same torch release on both sides, so rounding at most
ACTIVATION_QUANTISER = "ActivationPOTQuantizer"


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
    return agreement(got, probe["y"], AGREE_ATOL, "the trunk loaded in Sony's venv disagrees with the workstation's")


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
        return pot_scale(int(attrs["num_bits"]), bool(attrs["signed"]), float(attrs["threshold"]))

    return scale(nodes[0]), scale(nodes[-1])


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
    return convert_and_report("imxconv-pt", onnx_path, _activation_quantisation(onnx_path), worst,
                              {"torch": torch.__version__, "mct": mct.__version__})


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


if __name__ == "__main__":
    raise SystemExit(main(convert, simulate))
