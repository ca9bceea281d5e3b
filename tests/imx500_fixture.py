"""Sony's IMX500 venv (scripts/imx500-venv) and one fruit bundle exported with --trunk imx500, both cached in build/.

The venv is keyed by requirements-imx500.txt, the bundle by the zoo's key (tools/ and the bundle format) and the
venv's: a run installs and exports once (about 1.5 + 2 minutes on 2 cores), later runs reuse them. Tests skip, with the
reason, only where the machine cannot run Sony's tools: no Python 3.9-3.11, or no `java` for imxconv-tf. Sony's
PyTorch venv (./scripts/imx500-venv --pytorch) is opt-in, made only with EDGE_TEST_IMX500_PT=1.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import MINI_DATA, REPO, _zoo_key, cached_build, run_python, scripted_venv

REQUIREMENTS = REPO / "requirements-imx500.txt"
PT_REQUIREMENTS = REPO / "requirements-imx500-pt.txt"
PT_OPT_IN = "EDGE_TEST_IMX500_PT"  # the PyTorch venv costs 5-8 minutes and 6.3 GB: its tests run when this is 1
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
    """Sony's PyTorch venv (./scripts/imx500-venv --pytorch), cached in build/ by requirements-imx500-pt.txt."""
    if os.environ.get(PT_OPT_IN) != "1":
        pytest.skip(f"the PyTorch IMX500 venv (5-8 min, 6.3 GB) is opt-in: {PT_OPT_IN}=1 ./scripts/test "
                    f"tests/test_imx500_pytorch.py")
    if shutil.which("java") is None:
        pytest.skip("imxconv-pt needs `java` and this machine has none (apt install default-jre-headless)")
    venv = REPO / "build" / f"imx500-pt-venv-{hashlib.sha256(PT_REQUIREMENTS.read_bytes()).hexdigest()[:12]}"
    scripted_venv("imx500-venv", venv, timeout=3600, options=("--pytorch",))
    return venv
