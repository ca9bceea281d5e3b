"""Faults a Pi in a shed meets: kill -9 mid-run and a disk that fills up. Nothing already recorded may be lost."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
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
    # Mid-run: killed once 30 records are written (however long a loaded machine takes to get there), while records
    # and JPEGs are still being written.
    try:
        reached = _wait_for_lines(log / "predictions.jsonl", 30, child, timeout=180)
    finally:
        child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)
    assert reached, "edge run wrote fewer than 30 records in 180 s (or ended early)"
    lines = (log / "predictions.jsonl").read_bytes().split(b"\n")
    records = read_jsonl(log / "predictions.jsonl")
    complete = [line for line in lines[:-1]]  # every line before the last newline is whole
    assert len(records) >= len(complete) > 20
    named = {r[key] for r in records for key in ("frame_jpeg", "overlay_jpeg") if r.get(key)}
    assert all((log / name).is_file() for name in named)
    # Every image under its final name is whole, named by a record or not: records are written after their images,
    # so checking only the named ones could not see a JPEG written straight to its final name and cut short.
    final = [p for p in (log / "images").glob("*.jpg") if not p.name.startswith(".")]
    assert len(final) >= len(named) > 20
    for path in final:
        assert is_whole_jpeg(path.read_bytes()), path.name


def _wait_for_lines(path: Path, count: int, child: subprocess.Popen[bytes], timeout: float) -> bool:
    """Poll until `path` holds `count` complete lines; False if the deadline passes or the child ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and child.poll() is None:
        with contextlib.suppress(FileNotFoundError):
            if path.read_bytes().count(b"\n") >= count:
                return True
        time.sleep(0.05)
    return False


def is_whole_jpeg(data: bytes) -> bool:
    """A JPEG cut short still decodes (OpenCV fills the rest with gray), so look for its end-of-image marker too."""
    return data.startswith(b"\xff\xd8") and data.endswith(b"\xff\xd9") and cv2.imdecode(
        np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) is not None


# Run `edge run` with a limit on the size of any file it writes and SIGXFSZ at its default action (Python ignores
# it), so that the kernel kills the process in the very write() that crosses the limit: a power cut mid-JPEG.
_CUT_MID_WRITE = """
import resource, signal, sys
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), resource.RLIM_INFINITY))
signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
from edge.service.cli import main
sys.exit(main(sys.argv[2:]))
"""


def test_a_cut_in_the_middle_of_a_large_jpeg_leaves_no_partial_image(tmp_path: Path) -> None:
    folder, log = tmp_path / "in", tmp_path / "log"
    folder.mkdir()
    for i in range(3):  # small, smooth images: their JPEGs (a few KB) fit under the limit
        cv2.imwrite(str(folder / f"a_{i}.png"), np.full((120, 160, 3), 60 * i, np.uint8))
    noise = np.random.default_rng(0).integers(0, 256, (480, 640, 3), np.uint8)  # its JPEG: ~300 KB
    cv2.imwrite(str(folder / "z_noise.png"), noise)
    limit = 64 * 1024
    proc = run_python("-c", _CUT_MID_WRITE, str(limit), "run", "--model", DEMO, "--source", f"images:{folder}",
                      "--no-display", "--log-dir", str(log), timeout=120, env={"PYTHONDONTWRITEBYTECODE": "1"})
    assert proc.returncode == -signal.SIGXFSZ, proc.stderr[-2000:]  # killed mid-write, as planned
    files = {p.name: p.read_bytes() for p in (log / "images").iterdir()}
    final = {name: data for name, data in files.items() if not name.startswith(".")}
    assert all(is_whole_jpeg(data) for data in final.values()), [n for n, d in final.items() if not is_whole_jpeg(d)]
    assert len(final) == 6  # the three small frames and their overlays; nothing of the cut one
    assert any(len(data) == limit for data in files.values())  # the cut file is there, under a temporary name
    assert [r["file"] for r in read_jsonl(log / "predictions.jsonl")] == ["a_0.png", "a_1.png", "a_2.png"]


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
