"""Finding Sony's IMX500 venvs (scripts/imx500-venv) and running a worker script in one: the TensorFlow venv for
Keras models (sony_worker.py, imxconv-tf), the PyTorch venv for PyTorch models (pt_worker.py, imxconv-pt)."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tools.export.front_end import ExportError

REPO = Path(__file__).resolve().parents[3]  # the checkout: tools/export/imx500/toolchain.py


@dataclass(frozen=True)
class Toolchain:
    """One of Sony's two converter routes: its venv's default place, environment variable, converter and worker."""

    framework: str
    default_dir: str  # in the checkout
    env_var: str
    converter: str
    worker: Path
    make: str  # the command that installs the venv

    @property
    def install_hint(self) -> str:
        return f"run {self.make} (or point {self.env_var} / --imx500-venv at its venv)"


HERE = Path(__file__).parent
KERAS = Toolchain("keras", ".venv-imx500", "EDGE_IMX500_VENV", "imxconv-tf", HERE / "sony_worker.py",
                  "./scripts/imx500-venv")
PYTORCH = Toolchain("pytorch", ".venv-imx500-pt", "EDGE_IMX500_PT_VENV", "imxconv-pt", HERE / "pt_worker.py",
                    "./scripts/imx500-venv --pytorch")
ENV_VAR = KERAS.env_var
INSTALL_HINT = KERAS.install_hint


class ToolchainError(ExportError):
    """Sony's toolchain is missing or failed; one line saying what and what to do."""


def venv_dir(given: Path | None = None, chain: Toolchain = KERAS) -> Path:
    """--imx500-venv, else the route's environment variable, else its default venv in the checkout."""
    if given is not None:
        return given
    env = os.environ.get(chain.env_var)
    return Path(env) if env else REPO / chain.default_dir


def python_of(venv: Path, chain: Toolchain = KERAS) -> Path:
    """The venv's interpreter, after checking the toolchain is there; ToolchainError naming what is missing."""
    python = venv / "bin" / "python"
    what = "Sony's IMX500 toolchain" if chain is KERAS else "Sony's IMX500 toolchain for PyTorch"
    if not python.is_file():
        raise ToolchainError(f"{what} is not installed ({venv} has no bin/python): {chain.install_hint}")
    if not (venv / "bin" / chain.converter).is_file():
        raise ToolchainError(f"{venv} has no {chain.converter} (imx500-converter[{'tf' if chain is KERAS else 'pt'}] "
                             f"is missing): {chain.install_hint}")
    if shutil.which("java") is None:
        raise ToolchainError(f"{chain.converter} needs `java` on PATH: apt install default-jre-headless")
    return python


def run(venv: Path, args: list[str], log: Path | None = None, chain: Toolchain = KERAS) -> str:
    """The route's worker with ARGS in the venv; its stdout, or ToolchainError with its last error line (full log to
    log)."""
    python = python_of(venv, chain)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("PYTHONPATH", None)  # the workstation's packages must not shadow the venv's own
    # as a module from the checkout: the worker and its sibling worker_common, nothing else of the project
    proc = subprocess.run([str(python), "-m", f"tools.export.imx500.{chain.worker.stem}", *args], capture_output=True,
                          text=True, env=env, cwd=REPO, check=False)
    if log is not None:
        log.write_text(proc.stdout + proc.stderr, encoding="utf-8")
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("error:")]
        last = (errors or lines or [f"exited with {proc.returncode}"])[-1]
        raise ToolchainError(f"Sony's toolchain: {last.removeprefix('error: ')}")
    return proc.stdout
