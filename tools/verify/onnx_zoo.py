"""python -m tools.verify.onnx_zoo OUT: ONNX test models, their bundles and PyTorch references for the tests.

Each case is a PyTorch test model of tools/verify/torch_zoo.py (random init, BatchNorm statistics re-estimated on
random images), written to OUT/models/NAME.onnx by `torch.onnx.export(..., dynamo=False)` and exported through
`python -m tools.export NAME.onnx` as a user would. The references are computed on the original PyTorch model (torch
autograd, pytorch-grad-cam), so they are independent of the ONNX conversion. OUT/models/elu_head.onnx is a tiny model
whose head has an op the NumPy head lacks (ELU), for the error tests; it gets no bundle.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from tools.export.torch import model_spec
from tools.verify import torch_models, torch_zoo

# MobileNetV3-small: its head (GlobalAveragePool -> Gemm -> HardSwish -> Gemm) is not linear, and its features hold
# squeeze-and-excitation poolings that must not be taken for the head's.
CASES = {name: torch_zoo.CASES[name] for name in ("resnet18", "shufflenet", "mobilenet_v3_small", "fruit")}


def write_onnx(net: nn.Module, input_size: int, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(net.eval(), (torch.zeros(1, 3, input_size, input_size),), str(path), dynamo=False,
                      input_names=["image"], output_names=["logits"])


def build_case(name: str, case: torch_zoo.Case, out: Path) -> None:
    torch.manual_seed(case.seed)  # the PyTorch zoo's model, initialised alike
    net = model_spec.load(case.model, None)
    torch_models.reestimate_batchnorm(net, (case.input_size, case.input_size))
    path = out / "models" / f"{name}.onnx"
    write_onnx(net, case.input_size, path)
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.verify.onnx_zoo", description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)}")
    args = p.parse_args(argv)
    (args.out / "refs").mkdir(parents=True, exist_ok=True)
    write_onnx(elu_head(), 16, args.out / "models" / "elu_head.onnx")
    for name in args.cases.split(","):
        build_case(name, CASES[name], args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
