"""A PyTorch trunk carried into Sony's PyTorch venv: the model cut at its target layer (the same torch.fx split the
PyTorch front end makes) saved whole with torch.save, beside probe.npz (inputs and this side's outputs, which
tools/export/imx500/pt_worker.py checks after loading) and calibration.npz, all NCHW as the model takes them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray

from tools.export.torch import graph, model_spec

PROBE_COUNT = 8


class TorchCarryError(Exception):
    """The PyTorch trunk cannot be written for Sony's venv; the message says why."""


def write(model: str, weights: Path | None, target: str, workdir: Path, calibration: list[NDArray[np.float32]]) -> None:
    """trunk.pt (input -> the target's output A), probe.npz and calibration.npz into workdir."""
    if not calibration:
        raise TorchCarryError("no calibration images")
    net = model_spec.load(model, weights)
    features = graph.feature_module(graph.split(net, target)).eval()
    torch.save(features, workdir / "trunk.pt")
    x = np.ascontiguousarray(np.stack(calibration).transpose(0, 3, 1, 2), np.float32)  # (n, c, h, w)
    probe = x[:PROBE_COUNT]
    with torch.no_grad():
        y = features(torch.from_numpy(probe)).numpy()  # (n, k, h', w') float32
    np.savez(workdir / "probe.npz", x=probe, y=np.asarray(y, np.float32))
    np.savez(workdir / "calibration.npz", x=x)
