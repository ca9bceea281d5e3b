"""The site-packages entries of torch, torchvision and all they require, as this Python has them installed.

scripts/imx500-venv --pytorch links these into Sony's PyTorch venv instead of installing torch (with its CUDA
libraries) a second time; only these, so that MCT does not find the workstation's TensorFlow and import it."""

from __future__ import annotations

import sys
from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name


def closure(roots: list[str]) -> list[metadata.Distribution]:
    """ROOTS and every distribution they require (markers evaluated, extras followed)."""
    seen: dict[str, tuple[metadata.Distribution, frozenset[str]]] = {}
    todo = [(root, frozenset[str]()) for root in roots]
    while todo:
        name, extras = todo.pop()
        key = canonicalize_name(name)
        if key in seen and extras <= seen[key][1]:
            continue
        dist = metadata.distribution(name)
        extras = extras | (seen[key][1] if key in seen else frozenset())
        seen[key] = (dist, extras)
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in extras | {""}):
                todo.append((req.name, frozenset(req.extras)))
    return [dist for dist, _ in seen.values()]


def entries(roots: list[str]) -> list[str]:
    """The top-level files and directories (packages, modules, .libs, .dist-info) those distributions installed."""
    tops = set()
    for dist in closure(roots):
        for file in dist.files or []:
            top = file.parts[0]
            if top not in ("..", "__pycache__") and not top.endswith(".pth"):  # scripts in bin/, .pth hooks: not shared
                tops.add(str(dist.locate_file(top)))
    return sorted(tops)


if __name__ == "__main__":
    print("\n".join(entries(sys.argv[1:])))
