"""python -m tools.verify.onnx_zoo OUT: ONNX test models, their bundles and PyTorch references for the tests.

Each case is a PyTorch test model of tools/verify/torch_zoo.py (random init, BatchNorm statistics re-estimated on
random images), written to OUT/models/NAME.onnx by `torch.onnx.export(..., dynamo=False)` and exported through
`python -m tools.export NAME.onnx` as a user would. The references are computed on the original PyTorch model (torch
autograd, pytorch-grad-cam), so they are independent of the ONNX conversion. OUT/models/elu_head.onnx is a tiny model
whose head has an op the NumPy head lacks (ELU), and gelu_tanh_opset17/20.onnx GELU's tanh approximation (as the
element-wise formula, and as a Gelu node), for the error tests; they get no bundle.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from tools.verify import torch_zoo


@dataclass(frozen=True)
class OnnxCase:
    model: str  # a case of tools/verify/torch_zoo.py
    opset: int | None = None  # torch.onnx.export's opset_version; None: its default


# MobileNetV3-small: its head (GlobalAveragePool -> Gemm -> HardSwish -> Gemm) is not linear, and its features hold
# squeeze-and-excitation poolings that must not be taken for the head's. The activation head (Gemm, BatchNorm, GELU,
# Gemm, SiLU, Gemm, HardSigmoid, Gemm) at opset 17 has GELU as Div/Erf/Add/Mul/Mul and SiLU as Mul(x, Sigmoid(x));
# at opset 20 GELU is a Gelu node, which the opset-17 copy onnx2torch converts cannot hold as such.
CASES = {**{name: OnnxCase(name) for name in ("resnet18", "shufflenet", "mobilenet_v3_small", "fruit")},
         "activation_head_opset17": OnnxCase("activation_head", 17),
         "activation_head_opset20": OnnxCase("activation_head", 20)}


def write_onnx(net: nn.Module, input_size: int, path: Path, opset: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(net.eval(), (torch.zeros(1, 3, input_size, input_size),), str(path), dynamo=False,
                      input_names=["image"], output_names=["logits"], opset_version=opset)


def build_case(name: str, onnx_case: OnnxCase, out: Path) -> None:
    case = torch_zoo.CASES[onnx_case.model]
    net = torch_zoo.make_net(case)  # the PyTorch zoo's model, seeded alike
    path = out / "models" / f"{name}.onnx"
    write_onnx(net, case.input_size, path, onnx_case.opset)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    start = time.perf_counter()
    # No --input-size: the ONNX front end takes it from the graph.
    proc = subprocess.run([sys.executable, "-m", "tools.export", str(path), "--out", str(out / "bundles" / name),
                           *case.extra_args], cwd=torch_zoo.REPO, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"export of {name}.onnx failed: {proc.stderr.strip()[-2000:]}")
    print(f"{name}.onnx: exported in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    refs = torch_zoo.references(net, case)
    np.savez(out / "refs" / f"{name}.npz", onnx_sha256=np.array(digest), **refs)


def elu_head() -> nn.Module:
    """Conv -> ReLU -> global average pooling -> Linear -> ELU -> Linear: ELU has no edge activation."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 8),
                         nn.ELU(), nn.Linear(8, 3))


def gelu_tanh_head() -> nn.Module:
    """Conv -> global average pooling -> Linear -> GELU(approximate='tanh') -> Linear: not the device's GELU."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 8),
                         nn.GELU(approximate="tanh"), nn.Linear(8, 3))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.verify.onnx_zoo", description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)}")
    args = p.parse_args(argv)
    (args.out / "refs").mkdir(parents=True, exist_ok=True)
    write_onnx(elu_head(), 16, args.out / "models" / "elu_head.onnx")
    for opset in (17, 20):
        write_onnx(gelu_tanh_head(), 16, args.out / "models" / f"gelu_tanh_opset{opset}.onnx", opset)
    for name in args.cases.split(","):
        build_case(name, CASES[name], args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
