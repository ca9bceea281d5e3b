"""Sony's IMX500 venv (scripts/imx500-venv) and one fruit bundle exported with --trunk imx500, both cached in build/.

The venv is keyed by requirements-imx500.txt, the bundle by the zoo's key (tools/ and the bundle format) and the
venv's: a run installs and exports once (about 1.5 + 2 minutes on 2 cores), later runs reuse them. Tests skip, with the
reason, only where the machine cannot run Sony's tools: no Python 3.9-3.11, or no `java` for imxconv-tf. Sony's
PyTorch venv (./scripts/imx500-venv --pytorch) links torch from the workstation venv rather than installing it again.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import MINI_DATA, REPO, _zoo_key, cached_build, run_python, scripted_venv

REQUIREMENTS = REPO / "requirements-imx500.txt"
PT_REQUIREMENTS = REPO / "requirements-imx500-pt.txt"
FRUIT_MODEL = REPO / "models" / "fruit.keras"
HELD_OUT = MINI_DATA / "test"  # the project's held-out fruit frames (never seen in training or calibration)
CALIBRATION = MINI_DATA / "train"


def venv_key() -> str:
    return hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:12]


@pytest.fixture(scope="session")
def imx500_venv() -> Path:
    if shutil.which("java") is None:
        pytest.skip("imxconv-tf needs `java` and this machine has none (apt install default-jre-headless)")
    venv = REPO / "build" / f"imx500-venv-{venv_key()}"
    scripted_venv("imx500-venv", venv, timeout=1800)
    return venv


def export_fruit(out: Path, venv: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_python("-m", "tools.export", str(FRUIT_MODEL), "--out", str(out), "--target-layer", "bn4",
                      "--classes", "Apfel,Orange,Tomate", "--trunk", "imx500", "--calibration", str(CALIBRATION),
                      "--imx500-venv", str(venv), *extra, timeout=1800)


@pytest.fixture(scope="session")
def imx500_fruit(imx500_venv: Path) -> Path:
    """The trained fruit CNN (models/fruit.keras) cut at bn4, with its IMX500 trunk calibrated on the mini train set."""
    return cached_build(REPO / "build" / f"imx500-fruit-{_zoo_key()}-{venv_key()}",
                        lambda path: export_fruit(path, imx500_venv))


@pytest.fixture(scope="session")
def imx500_pt_venv() -> Path:
    """Sony's PyTorch venv (./scripts/imx500-venv --pytorch), cached in build/ by its requirements and the script; the
    script itself remakes it when the workstation's torch changes."""
    if shutil.which("java") is None:
        pytest.skip("imxconv-pt needs `java` and this machine has none (apt install default-jre-headless)")
    venv = REPO / "build" / f"imx500-pt-venv-{pt_venv_key()}"
    scripted_venv("imx500-venv", venv, timeout=3600, options=("--pytorch",))
    return venv


def pt_venv_key() -> str:
    made_by = [PT_REQUIREMENTS, REPO / "scripts" / "imx500-venv", REPO / "scripts" / "_workstation_torch.py"]
    return hashlib.sha256(b"".join(path.read_bytes() for path in made_by)).hexdigest()[:12]
