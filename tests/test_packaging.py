"""`pip install` gives working commands: the wheel is built from this checkout, installed into a fresh venv outside
it, and its `edge-explainer` runs the packaged demo bundle on the packaged samples from another directory.

The wheel is built by pip with the build backend named in pyproject.toml (hatchling, from the package index), and the
venv gets the wheel's own dependencies (from pip's cache when they were installed before): no TensorFlow, so the
tools command is checked without its [tools] extra.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from conftest import REPO
from packaging.requirements import Requirement

import edge
from edge.sinks import read_jsonl

pytestmark = pytest.mark.slow

DEMO = REPO / "models" / "fruit"
SAMPLES = REPO / "samples"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
DATA = "edge/_data"  # where pyproject.toml puts the demo bundle and the samples inside the wheel


def _run(args: list[str | Path], *, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """A command as a user runs it: without this checkout on PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    proc = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", out, REPO], cwd=out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (built,) = out.glob("edge_explainer-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv (no system site-packages) with the wheel and its dependencies; this interpreter's pip installs
    into it (--python), which saves bootstrapping a pip of its own."""
    root = tmp_path_factory.mktemp("venv") / "v"
    proc = _run([sys.executable, "-m", "venv", "--without-pip", root], cwd=root.parent)
    assert proc.returncode == 0, proc.stderr
    proc = _run([sys.executable, "-m", "pip", "--python", root / "bin" / "python", "install", "--quiet", wheel],
                cwd=root.parent, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root


def _sample_names() -> list[str]:
    return sorted(p.name for p in SAMPLES.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def test_wheel_holds_the_packages_and_the_demo_but_nothing_else(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        shipped = {n.removeprefix(f"{DATA}/"): z.read(n) for n in names if n.startswith(f"{DATA}/models/")}
        shipped_samples = {n.removeprefix(f"{DATA}/samples/"): z.read(n) for n in names
                           if n.startswith(f"{DATA}/samples/")}
    assert {n.split("/")[0] for n in names} == {"edge", "tools", f"edge_explainer-{edge.__version__}.dist-info"}
    assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".keras", ".h5"))]
    code = {str(p.relative_to(REPO)) for package in ("edge", "tools") for p in (REPO / package).rglob("*.py")
            if "__pycache__" not in p.parts}
    assert code <= names, sorted(code - names)
    for bundle in (DEMO, REPO / "models" / "fruit-int8"):  # everything each bundle needs, byte for byte
        manifest = json.loads((bundle / "manifest.json").read_text())
        for name in ("manifest.json", *manifest["files"]):
            assert shipped.get(f"models/{bundle.name}/{name}") == (bundle / name).read_bytes(), (bundle.name, name)
    for name in _sample_names():
        assert shipped_samples.get(name) == (SAMPLES / name).read_bytes(), name
    assert "README.md" in shipped_samples  # the samples' credits and licence travel with them


def test_wheel_metadata_version_licence_and_commands(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        info = f"edge_explainer-{edge.__version__}.dist-info"
        metadata = z.read(f"{info}/METADATA").decode()
        entry_points = z.read(f"{info}/entry_points.txt").decode()
    assert re.search(rf"^Version: {re.escape(edge.__version__)}$", metadata, re.M)
    assert re.search(rf"^License-Expression: {re.escape(PYPROJECT['project']['license'])}$", metadata, re.M)
    for script, target in PYPROJECT["project"]["scripts"].items():
        assert f"{script} = {target}" in entry_points


def _requirements(path: Path) -> set[Requirement]:
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return {Requirement(line) for line in lines if line and not line.startswith("-r ")}


def _as_text(requirements: set[Requirement] | list[str]) -> set[str]:
    return {str(Requirement(str(r))) for r in requirements}  # one spelling: specifier order, marker quotes


def test_requirements_files_agree_with_pyproject() -> None:
    """requirements-pi.txt and requirements-tools.txt (what the venvs and the Pi install) say what pyproject.toml's
    dependencies and extras say, markers included: editing one without the other fails here."""
    project = PYPROJECT["project"]
    extras = project["optional-dependencies"]
    assert _as_text(_requirements(REPO / "requirements-pi.txt")) == _as_text(project["dependencies"])
    assert "-r requirements-pi.txt" in (REPO / "requirements-tools.txt").read_text().splitlines()
    assert _as_text(_requirements(REPO / "requirements-tools.txt")) == _as_text(extras["tools"] + extras["dev"])
    assert "-r requirements-torch.txt" in (REPO / "requirements-tools.txt").read_text().splitlines()
    assert _as_text(_requirements(REPO / "requirements-torch.txt")) == _as_text(extras["torch"])


def test_service_runs_the_installed_command() -> None:
    """The unit's ExecStart is a console script of this package, in the venv that install.sh pip-installs into."""
    unit = (REPO / "systemd" / "edge-explainer.service").read_text()
    install = (REPO / "systemd" / "install.sh").read_text()
    match = re.search(r"^ExecStart=(\S+)/bin/(\S+) run ", unit, re.M)
    assert match, "ExecStart does not run VENV/bin/COMMAND run ..."
    venv, command = match.groups()
    assert command in PYPROJECT["project"]["scripts"]
    prefix = re.search(r"^PREFIX=\$\{PREFIX:-(\S+)\}$", install, re.M)
    assert prefix and venv == f"{prefix.group(1)}/.venv"
    assert re.search(r'"\$PREFIX/\.venv/bin/pip" install .*"\$SRC"', install), "install.sh does not pip-install"


def test_installed_command_runs_the_packaged_demo_from_anywhere(venv: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"  # no models/ or samples/ here: both come from the installed package
    elsewhere.mkdir()
    proc = _run([venv / "bin" / "edge-explainer", "run", "--source", "images:samples", "--no-display", "--log-dir",
                 tmp_path / "log"], cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr[-3000:]
    site = next((venv / "lib").glob("python3*/site-packages"))
    assert f"loaded {site / DATA / 'models/fruit'} " in proc.stderr
    records = read_jsonl(tmp_path / "log" / "predictions.jsonl")
    assert [r["file"] for r in records] == _sample_names()  # one record per sample, in order
    class_names = json.loads((DEMO / "manifest.json").read_text())["class_names"]
    for r in records:
        assert r["source"] == f"images:{site / DATA / 'samples'}"
        expected = [c for c in class_names if c.lower() in r["file"].lower()]  # files are named after their fruit
        assert r["label"] in expected, (r["file"], r["probabilities"])


def test_installed_version_help_and_module(venv: Path, tmp_path: Path) -> None:
    version = _run([venv / "bin" / "edge-explainer", "--version"], cwd=tmp_path)
    assert version.returncode == 0, version.stderr
    # the dependencies' markers pick the runtime: tflite-runtime on Python 3.11, ai-edge-litert from 3.12 on
    runtime = "tflite_runtime 2.14.0" if sys.version_info < (3, 12) else "ai_edge_litert "
    assert version.stdout.startswith(f"edge-explainer {edge.__version__} (runtime {runtime}"), version.stdout
    helped = _run([venv / "bin" / "edge-explainer", "run", "--help"], cwd=tmp_path)
    assert helped.returncode == 0 and helped.stdout.startswith("usage: edge-explainer run")
    module = _run([venv / "bin" / "python", "-m", "edge", "--help"], cwd=tmp_path)
    assert module.returncode == 0 and module.stdout.startswith("usage: python -m edge")


def test_installed_tools_command_without_its_extra(venv: Path, tmp_path: Path) -> None:
    tools = venv / "bin" / "edge-explainer-tools"
    helped = _run([tools, "--help"], cwd=tmp_path)
    assert helped.returncode == 0 and all(job in helped.stdout for job in ("export", "verify", "train", "fleet"))
    # a real Keras model, so that nothing but the missing extra can stop the export
    proc = _run([tools, "export", REPO / "models" / "fruit.keras", "--out", tmp_path / "bundle"], cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "pip install 'edge-explainer[tools]'" in proc.stderr, proc.stderr
    assert not (tmp_path / "bundle").exists()
    unknown = _run([tools, "exprot"], cwd=tmp_path)
    assert unknown.returncode == 2 and "unknown job 'exprot'" in unknown.stderr
