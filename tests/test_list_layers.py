"""--list-layers has one format for every front end (tools/export/layer_list.py): a header, the usable targets with
the default marked `*`, then the others summed up by reason, or each with its own under --all.

The PyTorch, ONNX and .pt2 forms are run on models made here in seconds (a torchvision ResNet18 and a small CNN written
by torch.onnx.export and torch.export.save); the Keras form on the test zoo is in tests/test_tools_cli.py.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, run_python

from tools.export.layer_list import Candidate, summarise

HEADER = re.compile(r"^usable target layers \((\d+); \* = the default\):$")
ROW = re.compile(r"^  [* ] (\S+) +(\S+) +(\(\d+, \d+, \d+\))$")

SMALL_CNN = """
import sys, torch
from torch import nn
net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.MaxPool2d(2, padding=1), nn.Conv2d(8, 16, 3), nn.ReLU(),
                    nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 3)).eval()
x = torch.zeros(1, 3, 32, 32)
torch.onnx.export(net, x, sys.argv[1] + "/cnn.onnx", dynamo=False)
torch.export.save(torch.export.export(net, (x,)), sys.argv[1] + "/cnn.pt2")
"""


def assert_common_format(text: str, default: str) -> list[str]:
    """The lines in the shared format, the default marked once; returns the usable names."""
    lines = text.splitlines()
    header = HEADER.match(lines[0])
    assert header, lines[0]
    usable = int(header.group(1))
    rows = [ROW.match(line) for line in lines[1:usable + 1]]
    assert all(rows), lines[1:usable + 1]
    assert [line[2] for line in lines[1:usable + 1]].count("*") == 1
    assert next(line for line in lines[1:usable + 1] if line[2] == "*").split()[1] == default
    rest = lines[usable + 1:]
    assert not rest or (rest[0].startswith("not usable (") and all(line.startswith("  ") for line in rest[1:]))
    assert "see --list-layers" not in text and "ok (default)" not in text
    return [row.group(1) for row in rows if row]


def test_the_reasons_are_grouped_and_the_default_marked() -> None:
    found = [Candidate("conv1", "Conv2d", (32, 32, 64), "op maxpool (MaxPool2d) after the target 'conv1' is not "
                       "supported by the NumPy head (only pooling without padding); choose a later target "
                       "(see --list-layers)"),
             Candidate("relu", "ReLU", (32, 32, 64), "op maxpool (MaxPool2d) after the target 'relu' is not supported "
                       "by the NumPy head (only pooling without padding); choose a later target (see --list-layers)"),
             Candidate("layer4", "Sequential", (2, 2, 512), None), Candidate("avgpool", "AdaptiveAvgPool2d",
                                                                                (1, 1, 512), None)]
    lines = summarise(found, "layer4", show_all=False)
    assert assert_common_format("\n".join(lines), "layer4") == ["layer4", "avgpool"]
    assert lines[-2:] == ["not usable (2 layers; --all lists each with its reason):",
                          "  2 layer(s) (conv1 ... relu): a MaxPool2d would fall into the head, and the NumPy head "
                          "has no such op (only pooling without padding)"]
    every = summarise(found, "layer4", show_all=True)
    assert every[3] == "not usable (2):" and len(every) == 6
    assert every[4].split()[0] == "conv1" and every[4].endswith("is not supported by the NumPy head (only pooling "
                                                                "without padding)")


@pytest.mark.slow
def test_pytorch_onnx_and_pt2_list_their_layers_alike(tmp_path: Path) -> None:
    pytest.importorskip("torch", reason="needs requirements-torch.txt")
    pytest.importorskip("onnx", reason="needs requirements-torch.txt")
    made = subprocess.run([sys.executable, "-c", SMALL_CNN, str(tmp_path)], capture_output=True, text=True,
                          timeout=300, check=False, cwd=REPO)
    assert made.returncode == 0, made.stderr[-2000:]
    resnet = run_python("-m", "tools.export", "torchvision.models:resnet18", "--input-size", "64", "--list-layers")
    assert resnet.returncode == 0, resnet.stderr[-2000:]
    assert assert_common_format(resnet.stdout, "layer4") == ["layer4", "avgpool"]
    assert "  4 layer(s) (maxpool ... layer3): a BasicBlock would fall into the head" in resnet.stdout
    for model in ("cnn.onnx", "cnn.pt2"):
        proc = run_python("-m", "tools.export", str(tmp_path / model), "--list-layers")
        assert proc.returncode == 0, proc.stderr[-2000:]
        lines = proc.stdout.splitlines()
        marked = next(line for line in lines if line.startswith("  * ")).split()[1]
        assert assert_common_format(proc.stdout, marked)
        every = run_python("-m", "tools.export", str(tmp_path / model), "--list-layers", "--all")
        assert every.returncode == 0 and every.stdout.splitlines()[0] == lines[0], every.stderr[-2000:]
        assert any(line.startswith("not usable (") for line in every.stdout.splitlines()), every.stdout
