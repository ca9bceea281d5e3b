"""The layout's rules hold: tools/ is grouped by job and its arrows only point down; the shared layers stay lean."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# A package may use packages of a lower rank only: shared layers (0), the export that others build on (1), the jobs a
# user runs (2), the benchmarks, which time evaluations, and the ablation, which runs whole jobs one after another (3),
# and edge-explainer-tools, which dispatches to every job (4).
RANK = {"common": 0, "data": 0, "keras_support": 0, "export": 1,
        "verify": 2, "train": 2, "evaluate": 2, "fleet": 2, "bench": 3, "ablation": 3, "cli": 4}
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


# edge/: the library (explain) at the bottom, above the few files everything shares; the records the loop hands around;
# the inputs and outputs (sources, sinks); the browser view (http), which serves a sink's frames; the service on top.
# A part may import parts of a lower rank only, so no arrow runs back up and no two parts import each other.
EDGE_RANK = {"errors": 0, "jpeg": 0, "safe_io": 0, "shipped": 0, "explain": 1, "live": 2, "records": 2,
             "sources": 3, "sinks": 3, "http": 4, "service": 5, "__main__": 6}
EDGE_IMPORT = re.compile(r"^\s*(?:from|import) edge\.(\w+)|^\s*from edge import ([\w, ]+)", re.M)


def _edge_part(path: Path) -> str:
    relative = path.relative_to(REPO / "edge")
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def _edge_uses(module: Path) -> set[str]:
    used: set[str] = set()
    for submodule, names in EDGE_IMPORT.findall(module.read_text()):
        used |= {submodule} if submodule else {n.strip() for n in names.split(",") if n.strip() in EDGE_RANK}
    return used


def test_every_edge_part_has_a_rank() -> None:
    parts = {_edge_part(p) for p in (REPO / "edge").glob("*") if p.suffix == ".py" or (p / "__init__.py").exists()}
    assert parts - {"__init__"} == set(EDGE_RANK)


def test_edge_arrows_only_point_down() -> None:
    """The library imports no source, sink, page, record or config; outputs know no camera; nothing imports the
    service; the browser view uses the sinks' record helpers and is not used by them."""
    upward = {(str(m.relative_to(REPO)), used) for m in (REPO / "edge").rglob("*.py") if m.name != "__init__.py"
              or m.parent != REPO / "edge" for used in _edge_uses(m)
              if used != _edge_part(m) and EDGE_RANK[used] >= EDGE_RANK[_edge_part(m)]}
    assert not upward, f"edge/ modules importing a part of the same or a higher rank: {sorted(upward)}"


# The developer guide's quality bar: small modules with names that explain themselves.
MAX_LINES = 300
CODE_ROOTS = ("edge", "tools", "tests", "scripts")


def _runs_python(script: Path) -> bool:
    with script.open("rb") as f:
        first = f.readline(200)
    return first.startswith(b"#!") and b"python" in first


def _python_files(root: Path) -> list[Path]:
    """root's Python modules, and its scripts without a suffix whose #! line runs Python."""
    return [p for p in sorted(root.rglob("*")) if p.is_file() and "__pycache__" not in p.parts
            and (p.suffix == ".py" or (not p.suffix and _runs_python(p)))]


def test_no_python_module_is_over_300_lines() -> None:
    lengths = {str(f.relative_to(REPO)): len(f.read_text(encoding="utf-8").splitlines())
               for root in CODE_ROOTS for f in _python_files(REPO / root)}
    assert len(lengths) > 100  # the walk found the code
    offenders = [f"{name} ({n} lines)" for name, n in sorted(lengths.items()) if n > MAX_LINES]
    assert not offenders, f"modules over {MAX_LINES} lines (split them by theme): {', '.join(offenders)}"
