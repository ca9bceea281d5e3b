"""Shared fixtures. pytest's own process never imports TensorFlow: TensorFlow work (building models, exporting them,
computing GradientTape references) runs in a subprocess, because TensorFlow imported first breaks the TFLite runtime
in the same process, and because the device has no TensorFlow either. (One exception, for mutation testing:
tests/test_verify_inprocess.py runs tools.verify in-process, after loading tflite_runtime's interpreter first.)"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from broker import auth_broker, broker, tls_broker  # noqa: F401 (fixtures: a real Mosquitto for the MQTT tests)
from browser import chromium_driver

REPO = Path(__file__).resolve().parent.parent


# The distributions whose versions make the zoos' weights, bundles and references: initialisers, converters, image
# decoding and resizing. keras, numpy and opencv are not pinned exactly, so two clones can hold different ones.
WEIGHT_MAKERS = ("numpy", "opencv-python-headless", "pillow", "h5py", "ml-dtypes", "tensorflow", "keras", "tf-keras",
                 "ai-edge-litert", "torch", "torchvision", "timm", "litert-torch", "onnx", "onnx2torch", "grad-cam",
                 "torchcam")


def stack_versions() -> bytes:
    """Python's version and each WEIGHT_MAKERS distribution's, from the installed metadata: nothing is imported
    (pytest's process must stay TensorFlow-free)."""
    def version(name: str) -> str:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "absent"

    return ";".join([sys.version.split()[0], *(f"{name}=={version(name)}" for name in WEIGHT_MAKERS)]).encode()


def _zoo_key() -> str:
    """What makes the zoo: the code that builds, seeds and exports its models (tools/, whose builders hold the seeds),
    the bundle format, the pinned workstation stack and the installed versions of what makes the weights. A cached
    zoo is then the zoo this checkout builds; any change rebuilds it."""
    digest = hashlib.sha256()
    edge_format = [REPO / "edge" / "explain" / name
                   for name in ("bundle.py", "head.py", "head_ops.py", "activations.py", "preprocess.py")]
    for path in sorted([*REPO.glob("tools/**/*.py"), *edge_format, REPO / "requirements-tools.txt"]):
        digest.update(str(path.relative_to(REPO)).encode() + path.read_bytes())
    digest.update(stack_versions())
    return digest.hexdigest()[:16]


def run_python(*args: str, timeout: float = 900, **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run `python ARGS` from the repository root, as a user would, capturing its output."""
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")
    env.update(kwargs.pop("env", {}))  # type: ignore[arg-type]
    return subprocess.run(
        [sys.executable, *args], cwd=kwargs.pop("cwd", REPO), env=env, capture_output=True, text=True,
        timeout=timeout, check=False, **kwargs,  # type: ignore[call-overload]
    )


def cached_build(out: Path, make: Callable[[Path], subprocess.CompletedProcess[str]]) -> Path:
    """OUT, made by `make(PATH)` (a `run_python` writing PATH) where it is not there yet. Written aside and renamed into
    place, so that a run killed half-way or two runs at once never leave a half-built tree under the final name."""
    if not out.exists():
        partial = out.with_name(f"{out.name}.partial-{os.getpid()}")
        proc = make(partial)
        assert proc.returncode == 0, f"python {' '.join(map(str, proc.args[1:]))} failed:\n{proc.stderr[-4000:]}"
        try:
            partial.rename(out)
        except OSError:  # another run finished first; its tree is as good
            shutil.rmtree(partial, ignore_errors=True)
    return out


def scripted_venv(script: str, venv: Path, timeout: float, options: tuple[str, ...] = ()) -> str:
    """What `scripts/SCRIPT [OPTIONS] VENV` prints, having made the venv there (or kept it, when its pins are
    unchanged). The scripts exit 2 saying "no Python ..." where this machine has none they can make it with: the test
    skips, so."""
    env = dict(os.environ, EDGE_VENV=sys.prefix)  # the venv running the tests is the workstation's (torch is shared)
    proc = subprocess.run([str(REPO / "scripts" / script), *options, str(venv)], capture_output=True, text=True,
                          timeout=timeout, check=False, env=env)
    if proc.returncode == 2 and "no Python" in proc.stderr:
        pytest.skip(f"scripts/{script} cannot make its venv here: {proc.stderr.strip()}")
    assert proc.returncode == 0, f"scripts/{script} failed:\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[Any]:
    """Debian's Chromium under Selenium (tests/browser.py), 1280 x 900, quit after the test."""
    browser: Any = chromium_driver(tmp_path / "profile")
    try:
        yield browser
    finally:
        browser.quit()


def build_zoo() -> Path:
    """Models, bundles and TF references from `python -m tools.verify.testmodels`, cached by content in build/.

    $EDGE_TEST_ZOO names a zoo built beforehand: scripts/mutation sets it, so that a mutant of edge/explain/head.py is
    tested against bundles exported by the unmutated code instead of rebuilding the zoo for every mutant."""
    if os.environ.get("EDGE_TEST_ZOO"):
        return Path(os.environ["EDGE_TEST_ZOO"])
    return cached_build(REPO / "build" / f"zoo-{_zoo_key()}",
                        lambda path: run_python("-m", "tools.verify.testmodels", str(path)))


# Test files that import TensorFlow into pytest's own process (the edge side refuses to run in such a process).
TENSORFLOW_IN_PROCESS = {"test_keras_activations.py", "test_verify_inprocess.py"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests that import TensorFlow last (a stable sort: the rest keep their order): TensorFlow then enters pytest's
    process after every other test, and a mutation run's mutants fail on the quick tests before they import it."""
    items.sort(key=lambda item: item.path.name in TENSORFLOW_IN_PROCESS)


@pytest.fixture(scope="session")
def zoo() -> Path:
    return build_zoo()


@pytest.fixture(scope="session")
def fruit_bundle(zoo: Path) -> Path:
    """A bundle of the tutorial's fruit CNN (seeded, untrained), target = last BatchNorm, classes Apfel/Orange/Tomate,
    preprocessing x = pixel / 255 on RGB."""
    return zoo / "bundles" / "fruit_bn"


MINI_DATA = Path(__file__).parent / "data" / "fruits360-mini"


def tiny_dataset(dest: Path, per_class: int = 5) -> Path:
    """A copy of tests/data/fruits360-mini (real Fruits-360 images) with per_class images per class and split."""
    for split in ("train", "valid", "test"):
        for cls in ("Apfel", "Orange", "Tomate"):
            (dest / split / cls).mkdir(parents=True, exist_ok=True)
            for path in sorted((MINI_DATA / split / cls).glob("*.jpg"))[:per_class]:
                shutil.copy(path, dest / split / cls / path.name)
    return dest


def zoo_frames(zoo: Path, case: str, directory: Path) -> Path:
    """The test-model zoo's frames of `case` written as PNG files (3 images), for commands that read a folder."""
    import cv2
    import numpy as np

    directory.mkdir(parents=True, exist_ok=True)
    with np.load(zoo / "refs" / f"{case}.npz") as ref:
        for i, frame in enumerate(ref["frames"]):
            cv2.imwrite(str(directory / f"img_{i}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    return directory


def perturbed_copy(bundle: Path, dest: Path, factor: float = 1.01) -> Path:
    """A copy of `bundle` whose last Dense kernel (the classifier) is `factor` times larger, its manifest's file hashes
    updated so that the device still loads it: a head that no longer computes what the model does."""
    import json

    import numpy as np

    from edge.explain import bundle as bundle_format
    from edge.explain.bundle_check import sha256_file

    shutil.copytree(bundle, dest)
    with np.load(dest / bundle_format.HEAD) as npz:
        arrays = {name: npz[name] for name in npz.files}
    kernel = sorted(name for name in arrays if name.endswith(".kernel"))[-1]
    arrays[kernel] = arrays[kernel] * np.float32(factor)
    np.savez(dest / bundle_format.HEAD, **arrays)
    manifest = json.loads((dest / bundle_format.MANIFEST).read_text(encoding="utf-8"))
    manifest["files"] = {name: sha256_file(dest / name) for name in manifest["files"]}
    (dest / bundle_format.MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    return dest


# The loggers whose levels a tool run in-process sets (tools.common.cli_support.setup_logging), and the root's
_SET_BY_TOOLS = ("", "tools", "edge", "tensorflow", "absl", "h5py", "torch", "torch.utils._pytree", "jax")


@pytest.fixture(autouse=True)
def _logger_levels() -> Iterator[None]:
    """Each test starts from the loggers' levels as they were: no test's outcome depends on which ran before it."""
    saved = {name: logging.getLogger(name).level for name in _SET_BY_TOOLS}
    yield
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)
