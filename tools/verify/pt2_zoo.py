"""python -m tools.verify.pt2_zoo OUT: `.pt2` test programs, their bundles and PyTorch references for the tests.

Each case is a PyTorch test model of tools/verify/torch_zoo.py (random init, BatchNorm statistics re-estimated on
random images), saved to OUT/models/NAME.pt2 by `torch.export.save(torch.export.export(model, (x,)))` and exported
through `python -m tools.export NAME.pt2` as a user would: no model code, no --weights, no --input-size (the program
fixes it). The references are computed on the original nn.Module (torch autograd, pytorch-grad-cam), so they are
independent of torch.export. OUT/models/elu_head.pt2 is a tiny program whose head has an op the NumPy head lacks (ELU),
for the error tests; it gets no bundle.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from tools.verify import onnx_zoo, torch_zoo

CASES = {
    "fruit": torch_zoo.CASES["fruit"],  # Flatten head over a (4, 4, 128) map: the NCHW -> NHWC row permutation
    # Non-linear head, squeeze-and-excitation poolings inside the features (not the head's)
    "mobilenet_v3_small": torch_zoo.CASES["mobilenet_v3_small"],
    # timm's head: SelectAdaptivePool2d, then conv_head, a 1x1 convolution of the pooled vector (a Linear)
    "timm_mobilenetv3": torch_zoo.CASES["timm_mobilenetv3"],
}
# For docs/torch.md: python -m tools.verify.pt2_zoo OUT --cases NAME (timm at 224 takes a minute or more each)
EXTRA_CASES = {
    "resnet18": torch_zoo.CASES["resnet18"],
    "densenet_style": torch_zoo.CASES["densenet_style"],
}


def write_pt2(net: nn.Module, input_size: int, path: Path, decompose: bool = False) -> None:
    """The model as a torch.export program; `decompose`: in the core ATen opset, as run_decompositions() gives."""
    path.parent.mkdir(parents=True, exist_ok=True)
    program = torch.export.export(net.eval(), (torch.zeros(1, 3, input_size, input_size),))
    torch.export.save(program.run_decompositions() if decompose else program, str(path))


def build_case(name: str, case: torch_zoo.Case, out: Path) -> None:
    net = torch_zoo.make_net(case)  # the PyTorch zoo's model, seeded alike
    path = out / "models" / f"{name}.pt2"
    write_pt2(net, case.input_size, path)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "tools.export", str(path), "--out", str(out / "bundles" / name),
                           *case.extra_args], cwd=torch_zoo.REPO, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"export of {name}.pt2 failed: {proc.stderr.strip()[-2000:]}")
    print(f"{name}.pt2: exported in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    np.savez(out / "refs" / f"{name}.npz", **torch_zoo.references(net, case))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.verify.pt2_zoo", description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--cases", default=",".join(CASES),
                   help=f"comma-separated, of {', '.join([*CASES, *EXTRA_CASES])} (default: {', '.join(CASES)})")
    args = p.parse_args(argv)
    (args.out / "refs").mkdir(parents=True, exist_ok=True)
    write_pt2(onnx_zoo.elu_head(), 16, args.out / "models" / "elu_head.pt2")
    for name in args.cases.split(","):
        build_case(name, {**CASES, **EXTRA_CASES}[name], args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
