"""What the PyTorch and ONNX front ends' tests share: their zoos (test models, bundles and framework references built
by a `python -m tools.verify.*_zoo` subprocess, cached under build/ by the content of the code that makes them), the
comparisons with the references, and the exporter run with some packages made unimportable."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import numpy as np
from comparisons import rel_diff
from conftest import REPO, cached_build, run_python, stack_versions

from edge import Explainer

_EDGE_FORMAT = ("bundle.py", "head.py", "head_ops.py", "activations.py")


def zoo_key(*verify_globs: str) -> str:
    """A digest of the export code, the edge bundle format, the tools/verify files matching `verify_globs` (the
    builders, which hold the seeds) and the installed versions of what makes the weights."""
    digest = hashlib.sha256()
    files = [*REPO.glob("tools/export/**/*.py"), *(p for g in verify_globs for p in REPO.glob(f"tools/verify/{g}")),
             *(REPO / "edge" / "explain" / name for name in _EDGE_FORMAT)]
    for path in sorted(set(files)):
        digest.update(str(path.relative_to(REPO)).encode() + path.read_bytes())
    digest.update(stack_versions())
    return digest.hexdigest()[:16]


def cached_zoo(module: str, prefix: str, *verify_globs: str) -> Path:
    """build/PREFIX-KEY, made by `python -m MODULE OUT` where it is not there yet."""
    return cached_build(REPO / "build" / f"{prefix}-{zoo_key(*verify_globs)}",
                        lambda path: run_python("-m", module, str(path), timeout=1800))


def references(zoo: Path, case: str) -> dict[str, np.ndarray]:
    with np.load(zoo / "refs" / f"{case}.npz") as npz:
        return {name: npz[name] for name in npz.files}


def assert_close_maps(actual: np.ndarray, expected: np.ndarray) -> None:
    """Raw CAM maps equal within 1e-4 of the reference's largest value (an all-zero reference fails: vacuous)."""
    assert rel_diff(actual, expected) <= 1e-4


def assert_parity(explainer: Explainer, ref: dict[str, np.ndarray], *, distinct_classes: bool = True) -> None:
    """For every reference input: the bundle's top class, probabilities (within 1e-5) and raw Grad-CAM (against
    pytorch-grad-cam's and plain autograd's) equal PyTorch's on the original model. `distinct_classes`: the inputs
    must not all get one class (a degenerate random-init model would make the maps' comparison weak)."""
    if distinct_classes:
        assert len(set(ref["class_index"].tolist())) > 1, "one class for every input: a degenerate test model"
    for i, x in enumerate(ref["x"]):
        r = explainer.explain_input(x)
        assert r.class_index == ref["class_index"][i]
        np.testing.assert_allclose(r.probabilities, ref["probabilities"][i], rtol=0, atol=1e-5)
        assert_close_maps(r.cam_raw, ref["gradcam_cam_raw"][i])
        assert_close_maps(r.cam_raw, ref["autograd_gradcam"][i])


_BLOCKED = """
import importlib.abc, sys

repo, blocked = sys.argv.pop(1), sys.argv.pop(1).split(",")

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ImportError(f"No module named {name!r} (blocked)")
        return None

sys.meta_path.insert(0, Block())
sys.path.insert(0, repo)
from tools.export.exporter import main
raise SystemExit(main(sys.argv[1:]))
"""


def export_without(packages: tuple[str, ...], args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """`python -m tools.export ARGS` in a process where importing any of `packages` raises ImportError."""
    return run_python("-c", _BLOCKED, str(REPO), ",".join(packages), *args, cwd=cwd)
