"""The systemd unit and sd_notify: `systemd-analyze verify`, the hardening score, READY=1 and WATCHDOG=1."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO

from edge.service.systemd_notify import Notifier

UNIT = REPO / "systemd" / "edge-explainer.service"
SYSTEM_UNITS = Path("/usr/lib/systemd/system")


def _exec_path() -> str:
    match = re.search(r"^ExecStart=(\S+)", UNIT.read_text(), re.MULTILINE)
    assert match
    return match.group(1)


@pytest.fixture
def unit_root(tmp_path: Path) -> Path:
    """A file-system root holding the unit as installed, with systemd's own units and the ExecStart binary, so that
    verify checks the shipped file unchanged."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed (apt install systemd)")
    root = tmp_path / "root"
    (root / "etc/systemd/system").mkdir(parents=True)
    shutil.copy(UNIT, root / "etc/systemd/system" / UNIT.name)
    shutil.copytree(SYSTEM_UNITS, root / SYSTEM_UNITS.relative_to("/"), symlinks=True)
    binary = root / _exec_path().lstrip("/")
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    return root


def test_unit_verifies_cleanly(unit_root: Path) -> None:
    proc = subprocess.run(["systemd-analyze", "verify", f"--root={unit_root}", UNIT.name],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == "", proc.stderr  # unknown keys are only warnings: none allowed


def test_unit_hardening_exposure(unit_root: Path) -> None:
    proc = subprocess.run(["systemd-analyze", "security", "--offline=yes", f"--root={unit_root}", UNIT.name],
                          capture_output=True, text=True, timeout=60, check=False)
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", proc.stdout + proc.stderr)
    assert match, proc.stdout + proc.stderr
    assert float(match.group(1)) <= 1.7  # today's score: new settings must not raise it


def test_unit_contract() -> None:
    text = UNIT.read_text()
    for line in ("Type=notify", "Restart=on-failure", "SupplementaryGroups=video", "StateDirectory=edge-explainer",
                 "NoNewPrivileges=yes", "ProtectSystem=strict", "DeviceAllow=char-video4linux rw"):
        assert re.search(rf"^{re.escape(line)}$", text, re.MULTILINE), line
    assert re.search(r"^WatchdogSec=\d+$", text, re.MULTILINE)
    assert re.search(r"^StartLimitBurst=\d+$", text, re.MULTILINE)
    assert re.search(r"^User=(?!root)\S+$", text, re.MULTILINE)
    assert "--log-dir ${STATE_DIRECTORY}" in text


def _receiver(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.2)
    return sock


def test_notifier_paths_and_abstract_addresses(tmp_path: Path) -> None:
    sock = _receiver(tmp_path / "notify")
    assert Notifier({"WATCHDOG_USEC": "400000"}).watchdog_interval == pytest.approx(0.2)  # half the timeout
    # A 60 s watchdog: the second ping falls inside the 30 s window however long a loaded machine stalls between the
    # two calls (with a 0.2 s window, a 0.2 s stall would send it and fail the test).
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "60000000"})
    notifier.ready("hello")
    notifier.ready()  # only once
    notifier.watchdog()
    notifier.watchdog()  # rate-limited: within 30 s of the last ping
    assert sock.recv(100) == b"READY=1\nSTATUS=hello"
    assert sock.recv(100) == b"WATCHDOG=1"
    with pytest.raises(TimeoutError):
        sock.recv(100)
    abstract = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    name = f"edge-test-{os.getpid()}"
    abstract.bind("\0" + name)
    abstract.settimeout(2)
    Notifier({"NOTIFY_SOCKET": "@" + name}).notify("STATUS=x")
    assert abstract.recv(100) == b"STATUS=x"
    assert not Notifier({}).notify("READY=1")  # outside systemd: silently nothing
    assert Notifier({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}).watchdog_interval == 1.0  # another pid's


@pytest.mark.slow
def test_loop_sends_ready_then_watchdog(fruit_bundle: Path, tmp_path: Path) -> None:
    sock = _receiver(tmp_path / "notify")
    env = dict(os.environ, PYTHONPATH=str(REPO), NOTIFY_SOCKET=str(tmp_path / "notify"), WATCHDOG_USEC="200000")
    cmd = [sys.executable, "-m", "edge", "run", "--model", str(fruit_bundle), "--source", "synthetic", "--fps", "20",
           "--no-display"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    messages: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and messages.count("WATCHDOG=1") < 3:
            try:
                messages.append(sock.recv(200).decode())
            except TimeoutError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr
    ready = [i for i, m in enumerate(messages) if m.startswith("READY=1")]
    watchdog = [i for i, m in enumerate(messages) if m == "WATCHDOG=1"]
    assert len(ready) == 1 and len(watchdog) >= 3 and ready[0] < watchdog[0], messages
    try:
        while True:
            messages.append(sock.recv(200).decode())
    except TimeoutError:
        pass
    assert "STOPPING=1" in messages


@pytest.mark.slow
def test_watchdog_stops_when_capture_hangs(fruit_bundle: Path, tmp_path: Path) -> None:
    """A capture call that never returns (reading a FIFO nobody writes) stops the WATCHDOG pings, so systemd's
    WatchdogSec kills and restarts the service."""
    import cv2
    import numpy as np

    folder = tmp_path / "frames"
    folder.mkdir()
    for name in "abcd":
        cv2.imwrite(str(folder / f"{name}.png"), np.full((60, 80, 3), 120, np.uint8))
    sock = _receiver(tmp_path / "notify")
    env = dict(os.environ, PYTHONPATH=str(REPO), NOTIFY_SOCKET=str(tmp_path / "notify"), WATCHDOG_USEC="200000")
    cmd = [sys.executable, "-m", "edge", "run", "--model", str(fruit_bundle), "--source", f"images:{folder}",
           "--fps", "2", "--no-display"]  # a slideshow: a frame every half second
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    messages: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(m.startswith("READY=1") for m in messages):
            try:
                messages.append(sock.recv(200).decode())
            except TimeoutError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert any(m.startswith("READY=1") for m in messages), messages
        # A frame is decoded, then paced: d.png is read about 1 s after a.png, well after this swap.
        (folder / "d.png").unlink()
        os.mkfifo(folder / "d.png")  # its read now blocks forever: nobody writes the FIFO
        time.sleep(2.5)  # frames b and c are explained and pinged for; then listen for 2 s = 20 watchdog intervals
        while True:
            try:
                sock.recv(200)
            except TimeoutError:
                break
        sock.settimeout(2.0)
        with pytest.raises(TimeoutError):
            while True:
                late = sock.recv(200).decode()
                assert late != "WATCHDOG=1", "the loop kept pinging while its capture hung"
        assert proc.poll() is None  # still stuck in the read: only the watchdog can end it
    finally:
        proc.kill()
        proc.wait(10)
