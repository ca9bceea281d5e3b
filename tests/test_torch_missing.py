"""Where PyTorch is not installed, a PyTorch MODEL is a one-line error naming requirements-torch.txt, not a
traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from torch_support import export_without


@pytest.mark.parametrize(("model", "message"), [
    ("torchvision.models:resnet18", "PyTorch models need requirements-torch.txt installed (torch, torchvision, "
                                    "litert-torch)"),
    ("model.pt2", ".pt2 models need requirements-torch.txt installed (torch, litert-torch)")])
@pytest.mark.parametrize("extra", [["--out", "b"], ["--list-layers"]])
def test_torch_model_without_torch_is_a_one_line_error(tmp_path: Path, model: str, message: str,
                                                        extra: list[str]) -> None:
    proc = export_without(("torch", "torchvision", "litert_torch"), [model, *extra], tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(f"error: {message}")
