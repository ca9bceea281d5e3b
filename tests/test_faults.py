"""Faults a Pi in a shed meets: kill -9 mid-run and a disk that fills up. Nothing already recorded may be lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import pytest
from conftest import REPO, run_python

from edge.sinks.disklog import read_jsonl

pytestmark = pytest.mark.slow
DEMO = str(REPO / "models" / "fruit")


def test_kill_9_leaves_every_earlier_record_and_image_readable(tmp_path: Path) -> None:
    log = tmp_path / "log"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    child = subprocess.Popen([sys.executable, "-m", "edge", "run", "--model", DEMO, "--source", "synthetic",
                              "--no-display", "--log-dir", str(log), "--log-every-frame"], cwd=REPO, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (log / "predictions.jsonl").exists():
        time.sleep(0.1)
    time.sleep(2.0)  # mid-run: records and JPEGs being written
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)
    lines = (log / "predictions.jsonl").read_bytes().split(b"\n")
    records = read_jsonl(log / "predictions.jsonl")
    complete = [line for line in lines[:-1]]  # every line before the last newline is whole
    assert len(records) >= len(complete) > 20
    for r in records:  # every image a record names was renamed into place whole, so it decodes
        for key in ("frame_jpeg", "overlay_jpeg"):
            if r.get(key):
                assert cv2.imread(str(log / r[key])) is not None, r[key]


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 1 MiB filesystem (tmpfs), so that ENOSPC comes from the kernel, not from a mock."""
    mount = tmp_path / "disk"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {proc.stderr.strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


@pytest.mark.parametrize("floor_mb", [0.0, 0.5])
def test_full_disk_stops_images_not_records(tiny_disk: Path, tmp_path: Path, floor_mb: float) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f"[log]\nmin_free_mb = {floor_mb}\nfsync = false\n")
    proc = run_python("-m", "edge", "run", "--config", str(config), "--model", DEMO, "--source", "synthetic",
                      "--no-display", "--max-frames", "300", "--log-dir", str(tiny_disk), "--log-every-frame",
                      timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    records = read_jsonl(tiny_disk / "predictions.jsonl")
    images = list((tiny_disk / "images").glob("*.jpg"))
    assert images and len(images) < 2 * 300  # some images, then no room for more
    if floor_mb:  # the floor keeps room for the log: every frame has its record
        assert len(records) == 300 and "free" in proc.stderr
    else:  # no floor: the kernel's ENOSPC, warned about, and the run still ends cleanly
        assert "disk full" in proc.stderr and len(records) > 0
    assert not list((tiny_disk / "images").glob(".tmp-*"))  # no half-written images left behind
