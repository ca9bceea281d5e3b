"""The layout's rules hold: tools/ is grouped by job and its arrows only point down; the shared layers stay lean."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# A package may use packages of a lower rank only: shared layers (0), the export that others build on (1), the jobs a
# user runs (2), the ablation, which runs whole jobs one after another (3), and edge-explainer-tools, which dispatches
# to every job (4).
RANK = {"common": 0, "data": 0, "keras_support": 0, "export": 1,
        "verify": 2, "train": 2, "evaluate": 2, "bench": 2, "fleet": 2, "ablation": 3, "cli": 4}
# Both imports and `python -m tools.X` subprocesses are arrows.
REFERENCE = re.compile(r'(?:from tools\.|import tools\.|"tools\.)(\w+)')


def _uses(package: Path) -> set[str]:
    used: set[str] = set()
    for module in package.rglob("*.py"):
        used |= set(REFERENCE.findall(module.read_text()))
    return used - {package.name}


def test_every_tools_package_has_a_rank() -> None:
    packages = {p.name for p in (REPO / "tools").iterdir() if (p / "__init__.py").exists()}
    assert packages == set(RANK)
    assert [p.name for p in (REPO / "tools").glob("*.py")] == ["__init__.py"], "tools/ holds packages only"


def test_arrows_only_point_down() -> None:
    upward = {(package, used) for package in RANK for used in _uses(REPO / "tools" / package)
              if RANK.get(used, 99) >= RANK[package]}
    assert not upward, f"tools/ packages using a package of the same or a higher layer: {sorted(upward)}"


def test_shared_data_layer_needs_no_tensorflow() -> None:
    """tools/data feeds the TensorFlow-free evaluation and benchmarks: it must not import TensorFlow or Keras."""
    heavy = re.compile(r"^\s*(?:import|from) (?:tensorflow|keras|tf_keras)\b", re.M)
    modules = (REPO / "tools" / "data").rglob("*.py")
    offenders = [str(m.relative_to(REPO)) for m in modules if heavy.search(m.read_text())]
    assert not offenders
