"""Finding Sony's IMX500 venv (scripts/imx500-venv) and running tools/export/imx500/sony_worker.py in it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tools.export.front_end import ExportError

REPO = Path(__file__).resolve().parents[3]  # the checkout: tools/export/imx500/toolchain.py
WORKER = Path(__file__).with_name("sony_worker.py")
ENV_VAR = "EDGE_IMX500_VENV"
INSTALL_HINT = "run ./scripts/imx500-venv (or point EDGE_IMX500_VENV / --imx500-venv at its venv)"


class ToolchainError(ExportError):
    """Sony's toolchain is missing or failed; one line saying what and what to do."""


def venv_dir(given: Path | None = None) -> Path:
    """--imx500-venv, else $EDGE_IMX500_VENV, else .venv-imx500 in the checkout."""
    if given is not None:
        return given
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else REPO / ".venv-imx500"


def python_of(venv: Path) -> Path:
    """The venv's interpreter, after checking the toolchain is there; ToolchainError naming what is missing."""
    python = venv / "bin" / "python"
    if not python.is_file():
        raise ToolchainError(f"Sony's IMX500 toolchain is not installed ({venv} has no bin/python): {INSTALL_HINT}")
    converter = venv / "bin" / "imxconv-tf"
    if not converter.is_file():
        raise ToolchainError(f"{venv} has no imxconv-tf (imx500-converter[tf] is missing): {INSTALL_HINT}")
    if shutil.which("java") is None:
        raise ToolchainError("imxconv-tf needs `java` on PATH: apt install default-jre-headless")
    return python


def run(venv: Path, args: list[str], log: Path | None = None) -> str:
    """sony_worker.py ARGS in the venv; its stdout, or ToolchainError with its last error line (full log to log)."""
    python = python_of(venv)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("PYTHONPATH", None)  # the workstation's packages must not shadow TensorFlow 2.15's
    proc = subprocess.run([str(python), str(WORKER), *args], capture_output=True, text=True, env=env, check=False)
    if log is not None:
        log.write_text(proc.stdout + proc.stderr, encoding="utf-8")
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("error:")]
        last = (errors or lines or [f"exited with {proc.returncode}"])[-1]
        raise ToolchainError(f"Sony's toolchain: {last.removeprefix('error: ')}")
    return proc.stdout
