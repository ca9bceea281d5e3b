"""`python -m edge run --check-config` as a user runs it: a subprocess that prints the effective config, refuses in
one line what run would refuse (also config files that are not configs) and touches nothing."""

from __future__ import annotations

import json
import os
import resource
import socket
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, run_python
from test_cli_run import write_images

pytestmark = pytest.mark.slow


def test_check_config_prints_the_effective_config(fruit_bundle: Path, tmp_path: Path) -> None:
    write_images(tmp_path / "imgs", count=1)
    proc = run_python("-m", "edge", "run", "--check-config", "--model", str(fruit_bundle), "--source",
                      f"images:{tmp_path / 'imgs'}", "--log-dir", str(tmp_path / "log"), "--alpha", "0.7", timeout=60)
    assert proc.returncode == 0, proc.stderr
    effective = json.loads(proc.stdout)
    assert effective["render"]["alpha"] == 0.7 and effective["log"]["dir"] == str(tmp_path / "log")
    assert "config OK" in proc.stderr


def _memory_cap() -> None:
    """Caps the child's address space, so that a config read without limit fails fast instead of eating the host."""
    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, resource.RLIM_INFINITY))


@pytest.mark.parametrize(("content", "expected"), [
    (b"[render]\nalpha = 0.5 # \xff\xfe\n", "not UTF-8 text"),
    (b"[log]\ndir = " + b"[" * 20000 + b"]" * 20000 + b"\n", "nested too deeply"),
    (None, "not a regular file"),  # /dev/zero: endless
])
def test_config_files_that_are_not_configs_exit_2_in_one_line(tmp_path: Path, content: bytes | None,
                                                                expected: str) -> None:
    path = Path("/dev/zero")
    if content is not None:
        path = tmp_path / "edge.toml"
        path.write_bytes(content)
    proc = run_python("-m", "edge", "run", "--check-config", "--config", str(path), timeout=120,
                      preexec_fn=_memory_cap)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"edge: error: {path}: ") and expected in lines[0], proc.stderr


def test_check_config_refuses_what_run_refuses(fruit_bundle: Path, tmp_path: Path) -> None:
    config = tmp_path / "edge.toml"
    config.write_text('[http]\nenabled = true\nhost = "0.0.0.0"\nport = 0\n')
    common = ["--config", str(config), "--model", str(fruit_bundle), "--source", "synthetic", "--no-display"]
    check = run_python("-m", "edge", "run", "--check-config", *common, timeout=60)
    run = run_python("-m", "edge", "run", "--max-frames", "1", *common, timeout=60)
    assert check.returncode == run.returncode == 2, (check.stderr, run.stderr)
    assert check.stderr.strip().splitlines()[-1] == run.stderr.strip().splitlines()[-1]
    assert "[http] host '0.0.0.0' is not loopback" in check.stderr


@pytest.mark.parametrize(("make", "expected"), [
    (lambda d: None, "not a directory"),  # the folder does not exist
    (lambda d: d.mkdir(), "no image files"),
])
def test_check_config_refuses_an_images_folder_run_cannot_read(fruit_bundle: Path, tmp_path: Path, make: Any,
                                                               expected: str) -> None:
    make(tmp_path / "imgs")
    proc = run_python("-m", "edge", "run", "--check-config", "--model", str(fruit_bundle), "--source",
                      f"images:{tmp_path / 'imgs'}", timeout=60)
    assert proc.returncode == 2 and expected in proc.stderr.strip().splitlines()[-1], proc.stderr


def test_check_config_refuses_a_log_dir_run_would_refuse(fruit_bundle: Path, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    (tmp_path / "log").mkdir()
    (tmp_path / "log" / "images").symlink_to(tmp_path)
    for log, expected in ((tmp_path / "file" / "log", "is not a folder"), (tmp_path / "log", "symbolic link")):
        proc = run_python("-m", "edge", "run", "--check-config", "--model", str(fruit_bundle), "--source",
                          "synthetic", "--log-dir", str(log), timeout=60)
        assert proc.returncode == 2 and expected in proc.stderr.strip().splitlines()[-1], proc.stderr


def test_check_config_has_no_side_effects(fruit_bundle: Path, tmp_path: Path) -> None:
    """No log directory made, no port bound (it is busy here, as while the service runs), no camera opened (the fake
    picamera2 library is importable here, as on a Pi), no broker contacted (a listener
    that must see no connection)."""
    busy, broker = socket.create_server(("127.0.0.1", 0)), socket.create_server(("127.0.0.1", 0))
    with busy, broker:
        broker.setblocking(False)
        proc = run_python("-m", "edge", "run", "--check-config", "--model", str(fruit_bundle), "--source", "picamera2",
                          "--log-dir", str(tmp_path / "state" / "log"), "--http", str(busy.getsockname()[1]),
                          "--mqtt", f"mqtt://127.0.0.1:{broker.getsockname()[1]}", timeout=60,
                          env={"PYTHONPATH": os.pathsep.join([str(REPO / "tests" / "fakes"), str(REPO)])})
        assert proc.returncode == 0, proc.stderr
        assert "config OK" in proc.stderr and json.loads(proc.stdout)["source"]["spec"] == "picamera2"
        assert not (tmp_path / "state").exists()
        with pytest.raises(BlockingIOError):
            broker.accept()

