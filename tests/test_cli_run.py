"""`python -m edge run` as a user runs it: a subprocess, real bundle, real files, real signals (its
--check-config: tests/test_cli_check_config.py)."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from conftest import REPO, run_python

from edge.explain.explainer import Explainer
from edge.records import Frame
from edge.service.loop import Explaining, Loop, LoopConfig
from edge.sinks import read_jsonl
from edge.sources import SourceError

pytestmark = pytest.mark.slow

DEMO_MODEL = REPO / "models" / "fruit"
SAMPLES = REPO / "samples"
RECORD_KEYS = {"time", "source", "frame", "label", "class_index", "confidence", "probabilities", "top", "method",
               "latency_ms", "peak", "file", "frame_jpeg", "overlay_jpeg", "model_sha256"}
STAGES = {"capture", "preprocess", "features", "head", "cam", "render"}


def write_images(folder: Path, count: int = 4) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(count):
        image = np.full((120 + 10 * i, 160, 3), 60 + 30 * i, np.uint8)
        cv2.circle(image, (80, 60), 30, (30, 40, 220 - 40 * i), -1)
        names.append(f"img_{i:02d}.jpg")
        cv2.imwrite(str(folder / names[-1]), image)
    (folder / "zz_broken.png").write_bytes(b"\x89PNG truncated")
    return names


def check_log(log: Path, names: list[str], class_names: list[str], source: str) -> list[dict]:
    records = read_jsonl(log / "predictions.jsonl")
    assert [r["file"] for r in records] == names  # one record per readable image, in order
    for i, r in enumerate(records):
        assert set(r) >= RECORD_KEYS, RECORD_KEYS - set(r)
        assert r["frame"] == i and r["source"] == source and r["method"] == "gradcam"
        assert r["time"].endswith("+00:00")
        assert list(r["probabilities"]) == class_names
        assert sum(r["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
        assert r["label"] == class_names[r["class_index"]] == max(r["probabilities"], key=r["probabilities"].get)
        assert set(r["latency_ms"]) >= STAGES and all(v >= 0 for v in r["latency_ms"].values())
        assert 0 <= r["peak"]["x"] <= 1 and 0 <= r["peak"]["y"] <= 1
        frame = cv2.imread(str(log / r["frame_jpeg"]))
        overlay = cv2.imread(str(log / r["overlay_jpeg"]))
        assert frame is not None and overlay is not None and frame.shape == overlay.shape
        assert list(frame.shape[1::-1]) == r["size"]
        assert np.abs(frame.astype(int) - overlay).mean() > 1.0  # the overlay differs from the frame (label at least)
    return records


def test_images_run_logs_every_image(fruit_bundle: Path, tmp_path: Path) -> None:
    names = write_images(tmp_path / "imgs")
    proc = run_python("-m", "edge", "run", "--model", str(fruit_bundle), "--source", f"images:{tmp_path / 'imgs'}",
                      "--log-dir", str(tmp_path / "log"), "--no-display", "--stdout", timeout=120)
    assert proc.returncode == 0, proc.stderr
    class_names = json.loads((fruit_bundle / "manifest.json").read_text())["class_names"]
    records = check_log(tmp_path / "log", names, class_names, f"images:{tmp_path / 'imgs'}")
    printed = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [p["frame"] for p in printed] == [r["frame"] for r in records]
    assert [p["probabilities"] for p in printed] == [r["probabilities"] for r in records]
    assert "zz_broken.png" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.skipif(not (DEMO_MODEL / "manifest.json").exists() or not SAMPLES.is_dir(),
                    reason="the trained demo model models/fruit and samples/ are not in this checkout yet")
def test_demo_model_gets_the_samples_right(tmp_path: Path) -> None:
    """The README's first command: default --model (the shipped bundle) on the bundled samples."""
    proc = run_python("-m", "edge", "run", "--source", "images:samples", "--log-dir", str(tmp_path / "log"),
                      "--no-display", timeout=300)
    assert proc.returncode == 0, proc.stderr
    class_names = json.loads((DEMO_MODEL / "manifest.json").read_text())["class_names"]
    names = sorted(p.name for p in SAMPLES.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    records = check_log(tmp_path / "log", names, class_names, "images:samples")
    for r in records:  # sample files are named after their fruit: apfel_01.jpg, or apfel+orange_01.jpg for two
        expected = [c for c in class_names if c.lower() in r["file"].lower()]
        assert expected and r["label"] in expected, (r["file"], r["probabilities"])


def test_errors_are_one_line_and_exit_2(fruit_bundle: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[render]\nalpha = 3\n")
    cases = {
        "[render] alpha: 3.0 is out of range": ["--config", str(bad), "--model", str(fruit_bundle)],
        "nope": ["--model", str(tmp_path / "nope"), "--source", "synthetic", "--no-display"],
        "unknown source": ["--model", str(fruit_bundle), "--source", "webcam", "--no-display"],
        "unknown class 'Kiwi'": ["--model", str(fruit_bundle), "--target", "Kiwi", "--source", "synthetic"],
    }
    for expected, args in cases.items():
        proc = run_python("-m", "edge", "run", *args, timeout=60)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2, (args, proc.stderr)
        assert lines[-1].startswith("edge: error:") and expected in lines[-1], proc.stderr
        assert "Traceback" not in proc.stderr
    debug = run_python("-m", "edge", "run", "--debug", *cases["nope"], timeout=60)
    assert debug.returncode == 2 and "Traceback" in debug.stderr


def test_default_model_is_the_shipped_bundle(tmp_path: Path) -> None:
    proc = run_python("-m", "edge", "run", "--source", "synthetic", "--max-frames", "1", "--no-display",
                      cwd=tmp_path, timeout=120)
    if (DEMO_MODEL / "manifest.json").exists():
        assert proc.returncode == 0, proc.stderr
    else:
        assert proc.returncode == 2 and "models/fruit" in proc.stderr.strip().splitlines()[-1]


def test_sigterm_stops_within_2_s_with_the_log_flushed(fruit_bundle: Path, tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "edge", "run", "--model", str(fruit_bundle), "--source", "synthetic", "--fps", "30",
           "--log-dir", str(tmp_path / "log"), "--log-every-frame", "--no-display"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = tmp_path / "log" / "predictions.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not log.exists() or len(read_jsonl(log)) < 5):
        time.sleep(0.1)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        _, stderr = proc.communicate(timeout=10)
    finally:
        proc.kill()
    elapsed = time.monotonic() - t0
    assert proc.returncode == 0, stderr
    # The loop stops within 2 s; the bound leaves room for interpreter teardown on a loaded 2-core machine (a hang
    # would hit communicate's 10 s).
    assert elapsed < 4.0, f"took {elapsed:.2f} s to stop"
    text = log.read_text()
    assert text.endswith("\n")  # flushed: no partial last record
    records = read_jsonl(log)
    assert len(records) == len(text.splitlines()) >= 5
    assert "SIGTERM: stopping" in stderr and "stopped after" in stderr


class FlakySource:
    """A live source whose reads fail in a given window of calls; counts reopenings."""

    name = "flaky"
    live = True

    def __init__(self, fail: range) -> None:
        self.fail = fail
        self.calls = 0
        self.opened = 0

    def open(self) -> None:
        self.opened += 1

    def read(self) -> Frame | None:
        self.calls += 1
        if self.calls in self.fail:
            raise SourceError("flaky: read timed out")
        time.sleep(0.01)
        return Frame(image=np.full((48, 64, 3), self.calls % 255, np.uint8), index=self.calls, timestamp=time.time())

    def close(self) -> None: ...

    def __enter__(self) -> FlakySource:
        return self

    def __exit__(self, *exc: object) -> None: ...


def _loop(bundle: Path, source: FlakySource, **config: float) -> Loop:
    return Loop(Explainer.load(bundle), source, [], config=LoopConfig(**config),  # type: ignore[arg-type]
                explaining=Explaining(), stop=threading.Event())


def test_loop_reopens_a_failing_source_and_goes_on(fruit_bundle: Path) -> None:
    source = FlakySource(fail=range(3, 6))
    stats = _loop(fruit_bundle, source, max_frames=10, reopen_backoff_s=0.01).run()
    assert stats.frames == 10 and stats.read_errors == 3 and source.opened == 3 and not stats.failure


def test_loop_gives_up_without_frames(fruit_bundle: Path) -> None:
    source = FlakySource(fail=range(1, 10**9))
    t0 = time.monotonic()
    stats = _loop(fruit_bundle, source, no_frame_timeout_s=0.5, reopen_backoff_s=0.05).run()
    assert "no frame from flaky" in stats.failure and stats.frames == 0
    assert time.monotonic() - t0 < 10  # gave up (0.5 s without frames), did not hang; loose for a loaded machine


def test_live_frames_are_dropped_not_queued_behind_a_slow_loop(fruit_bundle: Path) -> None:
    source = FlakySource(fail=range(0))

    class Slow:
        name = "slow"

        def open(self) -> None: ...

        def handle(self, result: object) -> None:
            time.sleep(0.1)

        def close(self) -> None: ...

    loop = Loop(Explainer.load(fruit_bundle), source, [Slow()], config=LoopConfig(max_frames=5),
                explaining=Explaining(), stop=threading.Event())
    stats = loop.run()
    assert stats.frames == 5 and stats.dropped > 0  # ~8 frames arrive per 100 ms slot; queued ones would not count


def test_stdout_reader_going_away_does_not_stop_the_run(fruit_bundle: Path, tmp_path: Path) -> None:
    """`edge run --stdout | head -1`: the log still gets every frame and nothing is printed as a traceback."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "edge", "run", "--model", str(fruit_bundle), "--source", "synthetic",
           "--max-frames", "300", "--no-display", "--stdout", "--log-dir", str(tmp_path / "log"), "--log-every-frame"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    assert json.loads(proc.stdout.readline())["frame"] == 0
    proc.stdout.close()
    stderr = proc.stderr.read()
    assert proc.wait(60) == 0, stderr
    assert "Traceback" not in stderr and "stdout closed by its reader" in stderr
    # 300 records (~180 KB) overflow the pipe's buffer, so the writer surely meets the closed pipe
    assert len(read_jsonl(tmp_path / "log" / "predictions.jsonl")) == 300


def test_a_slow_disk_log_gets_every_record_at_the_end_of_a_file_source(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The end of images: is a normal end: the sink's queue is drained however long that takes (the old 1 s wait
    closed the log under it and lost the queued records)."""
    from edge.service import cli
    from edge.sinks import DiskLogSink

    class SlowDiskLog(DiskLogSink):  # the real disk log, on a disk that takes 0.3 s per record
        def handle(self, result: Any) -> None:
            time.sleep(0.3)
            super().handle(result)

    monkeypatch.setattr(cli, "DiskLogSink", SlowDiskLog)
    names = write_images(tmp_path / "imgs", count=8)
    code = cli.main(["run", "--model", str(DEMO_MODEL), "--source", f"images:{tmp_path / 'imgs'}", "--no-display",
                     "--log-dir", str(tmp_path / "log")])
    assert code == 0
    assert [r["file"] for r in read_jsonl(tmp_path / "log" / "predictions.jsonl")] == names


def test_a_signal_cuts_the_drain_of_a_slow_disk_log_short(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    """SIGTERM during an endless file-like source: the queued records get only the shutdown budget, then it stops."""
    from edge.service import cli
    from edge.sinks import DiskLogSink

    class SlowDiskLog(DiskLogSink):
        def handle(self, result: Any) -> None:
            time.sleep(0.5)  # 4 queued: 2 s of work, twice the budget
            super().handle(result)

    monkeypatch.setattr(cli, "DiskLogSink", SlowDiskLog)
    caplog.set_level(logging.INFO)
    log = tmp_path / "log" / "predictions.jsonl"

    def terminate_after_the_first_record() -> None:
        while not (log.exists() and log.stat().st_size):
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=terminate_after_the_first_record, daemon=True).start()
    code = cli.main(["run", "--model", str(DEMO_MODEL), "--source", "synthetic", "--no-display",
                     "--log-dir", str(tmp_path / "log")])
    assert code == 0
    assert "SIGTERM: stopping" in caplog.text
    assert "sink disklog did not finish in time at shutdown" in caplog.text
    assert log.read_text().endswith("\n")

