"""Disk log: records, JPEGs, the logging policy, atomic writes, rotation and the free-space floor."""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.explain.explainer import Explanation
from edge.records import Frame, Result, SinkError
from edge.sinks import DiskLogConfig, DiskLogSink, SinkWorker, read_jsonl
from edge.sinks.disklog import IMAGES, JSONL
from edge.sinks.record import LogPolicy, PolicyConfig, make_record, peak_position

NAMES = ("Apfel", "Orange", "Tomate")


def make_result(index: int, class_index: int = 0, confidence: float = 0.6, t: float | None = None) -> Result:
    probabilities = np.full(3, (1 - confidence) / 2, np.float32)
    probabilities[class_index] = confidence
    cam = np.zeros((4, 4), np.float32)
    cam[1, 3] = 1.0  # peak at column 3 of 4, row 1 of 4
    image = np.full((48, 64, 3), 40 * (index % 6), np.uint8)
    ex = Explanation(probabilities=probabilities, class_index=class_index, label=NAMES[class_index], score=2.0,
                     cam=cam, cam_raw=cam, method="gradcam", timings={"features": 3.0})
    frame = Frame(image=image, index=index, timestamp=1_700_000_000.0 + index if t is None else t, name=f"{index}.jpg")
    return Result(frame=frame, explanation=ex, drawn=255 - image, cam=cam, top=[(NAMES[class_index], confidence)],
                  source="images:x", fps=5.0, timings={"capture": 1.0, "features": 3.0}, class_names=NAMES)


def test_record_fields() -> None:
    record = make_record(make_result(7, class_index=1, confidence=0.8))
    assert record["time"] == "2023-11-14T22:13:27.000+00:00"
    assert record["frame"] == 7 and record["source"] == "images:x" and record["file"] == "7.jpg"
    assert record["label"] == "Orange" and record["class_index"] == 1 and record["confidence"] == pytest.approx(0.8)
    assert record["probabilities"] == pytest.approx({"Apfel": 0.1, "Orange": 0.8, "Tomate": 0.1})
    assert record["latency_ms"] == {"capture": 1.0, "features": 3.0}
    assert record["peak"] == {"x": 0.875, "y": 0.375, "x_px": 56, "y_px": 18}
    assert peak_position(np.eye(2, dtype=np.float32)[::-1].copy()) == (0.75, 0.25)


def test_policy_interval_change_and_confidence() -> None:
    policy = LogPolicy(PolicyConfig(every_s=10, on_change=True, above=0.9), every_frame_default=False)
    decisions = [policy.should_log(make_result(i, c, p, t=t)) for i, (c, p, t) in enumerate([
        (0, 0.5, 0.0),  # first frame: logged
        (0, 0.5, 5.0),  # nothing new
        (1, 0.5, 6.0),  # class change
        (1, 0.95, 7.0),  # above the confidence
        (1, 0.5, 12.0),  # 5 s since the last logged frame: not yet
        (1, 0.5, 17.5),  # 10.5 s: due
    ])]
    assert decisions == [True, False, True, True, False, True]
    assert all(LogPolicy(PolicyConfig(), every_frame_default=True).should_log(make_result(i, t=0)) for i in range(3))
    quiet = LogPolicy(PolicyConfig(every_s=0, on_change=False, every_frame=False), every_frame_default=True)
    assert [quiet.should_log(make_result(i, i % 2, t=i)) for i in range(3)] == [True, False, False]


def _sink(tmp_path: Path, **kw: object) -> DiskLogSink:
    config = DiskLogConfig(dir=str(tmp_path / "log"), fsync=False, **kw)  # type: ignore[arg-type]
    sink = DiskLogSink(config, every_frame_default=True)
    sink.open()
    return sink


def test_records_and_jpegs(tmp_path: Path) -> None:
    sink = _sink(tmp_path)
    for i in range(3):
        sink.handle(make_result(i))
    sink.close()
    records = read_jsonl(tmp_path / "log" / JSONL)
    assert [r["frame"] for r in records] == [0, 1, 2]
    for r in records:
        frame = cv2.imread(str(tmp_path / "log" / r["frame_jpeg"]))[:, :, ::-1]
        overlay = cv2.imread(str(tmp_path / "log" / r["overlay_jpeg"]))[:, :, ::-1]
        assert frame.shape == overlay.shape == (48, 64, 3)
        expected = make_result(r["frame"])
        assert np.abs(frame.astype(int) - expected.frame.image).mean() < 3
        assert np.abs(overlay.astype(int) - expected.overlay).mean() < 3
    assert not list((tmp_path / "log" / IMAGES).glob(".tmp-*"))


def test_partial_last_line_is_skipped_and_logging_goes_on(tmp_path: Path) -> None:
    sink = _sink(tmp_path, save_frames=False, save_overlays=False)
    sink.handle(make_result(0))
    sink.close()
    with open(tmp_path / "log" / JSONL, "a") as f:  # a power cut in the middle of a record
        f.write('{"time": "2023-11-14T22:1')
    sink = _sink(tmp_path, save_frames=False, save_overlays=False)
    sink.handle(make_result(1))
    sink.close()
    lines = (tmp_path / "log" / JSONL).read_text().splitlines()
    assert len(lines) == 3
    assert [r["frame"] for r in read_jsonl(tmp_path / "log" / JSONL)] == [0, 1]


def test_rotation_keeps_the_newest_files(tmp_path: Path) -> None:
    sink = _sink(tmp_path, max_files=4)
    for i in range(5):
        sink.handle(make_result(i))
    sink.close()
    images = sorted(p.name for p in (tmp_path / "log" / IMAGES).iterdir())
    assert len(images) == 4 and all("0000000" + str(i) in "".join(images) for i in (3, 4))
    assert len(read_jsonl(tmp_path / "log" / JSONL)) == 5  # the file being written is never deleted
    reopened = _sink(tmp_path, max_files=4)  # the budget holds across restarts
    reopened.handle(make_result(5))
    reopened.close()
    assert len(list((tmp_path / "log" / IMAGES).iterdir())) == 4


def test_jsonl_rotates_by_size_and_old_logs_are_deleted_by_total_size(tmp_path: Path) -> None:
    sink = _sink(tmp_path, save_frames=False, save_overlays=False, jsonl_max_mb=0.01, max_mb=0.03)
    for i in range(200):  # ~600 bytes each: ~120 KB in all
        sink.handle(make_result(i, t=1_700_000_000.0 + i))
    sink.close()
    log = tmp_path / "log"
    rotated = sorted(log.glob("predictions-*.jsonl"))
    assert rotated, "no rotation happened"
    total = sum(p.stat().st_size for p in [*rotated, log / JSONL])
    assert total <= 0.03 * 1024 * 1024
    frames = [r["frame"] for p in [*rotated, log / JSONL] for r in read_jsonl(p)]
    assert frames == sorted(frames) and frames[-1] == 199 and frames[0] > 0


def test_free_space_floor_stops_images_not_records(tmp_path: Path) -> None:
    sink = _sink(tmp_path, min_free_mb=1e7)  # more than any disk here has free
    sink.handle(make_result(0))
    sink.close()
    record = read_jsonl(tmp_path / "log" / JSONL)[0]
    assert "frame_jpeg" not in record and record["label"] == "Apfel"
    assert sink.images_skipped == 1 and not list((tmp_path / "log" / IMAGES).iterdir())


def test_unwritable_dir_is_one_line_naming_the_key(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(SinkError, match=r"\[log\] dir .*file/log: not writable"):
        DiskLogSink(DiskLogConfig(dir=str(tmp_path / "file" / "log"))).open()


class _SlowSink:
    name = "slow"

    def __init__(self) -> None:
        self.seen: list[int] = []
        self.gate = threading.Event()

    def open(self) -> None: ...

    def handle(self, result: Result) -> None:
        self.gate.wait(5)
        self.seen.append(result.frame.index)

    def close(self) -> None: ...


def test_worker_drops_oldest_when_live_and_never_blocks() -> None:
    slow = _SlowSink()
    worker = SinkWorker(slow, blocking=False, size=2)
    worker.open()
    t0 = time.monotonic()
    for i in range(20):
        worker.handle(make_result(i))
    assert time.monotonic() - t0 < 2.5  # never held up: one blocked handle() would wait 5 s for the gate
    slow.gate.set()
    worker.close()
    assert slow.seen[-1] == 19 and worker.dropped == 20 - len(slow.seen)
    assert worker.dropped >= 16


def test_worker_blocking_delivers_everything_in_order() -> None:
    slow = _SlowSink()
    slow.gate.set()
    worker = SinkWorker(slow, blocking=True, size=1)
    worker.open()
    for i in range(30):
        worker.handle(make_result(i))
    worker.close()
    assert slow.seen == list(range(30)) and worker.dropped == 0


def test_record_is_json_serialisable() -> None:
    assert json.loads(json.dumps(make_record(make_result(1))))["frame"] == 1


class _SleepySink(_SlowSink):
    """Takes longer per result than the old 1 s shutdown wait allowed for the whole queue."""

    def handle(self, result: Result) -> None:
        time.sleep(0.3)
        self.seen.append(result.frame.index)


def test_worker_close_at_a_normal_end_handles_every_queued_result() -> None:
    sleepy = _SleepySink()
    worker = SinkWorker(sleepy, blocking=True, size=8)
    worker.open()
    for i in range(8):  # 8 queued x 0.3 s: 2.4 s of work left when close() is called
        worker.handle(make_result(i))
    worker.close()
    assert sleepy.seen == list(range(8))


def test_worker_close_after_a_signal_gives_up_after_its_budget(caplog: pytest.LogCaptureFixture) -> None:
    stuck = _SlowSink()  # its gate stays shut: it would never finish
    worker = SinkWorker(stuck, blocking=True, size=4, interrupt_budget_s=0.2)
    worker.open()
    for i in range(4):
        worker.handle(make_result(i))
    worker.interrupted.set()
    worker.close()  # returns (a hang here would be the bug) and says what was left
    assert re.search(r"sink slow did not finish in time at shutdown: [1-4] results not handled", caplog.text)
    stuck.gate.set()


def test_a_blocking_worker_stops_waiting_for_room_after_a_signal() -> None:
    stuck = _SlowSink()
    worker = SinkWorker(stuck, blocking=True, size=1)
    worker.open()
    worker.handle(make_result(0))  # taken by the stuck sink
    worker.handle(make_result(1))  # fills the queue
    waiting = threading.Thread(target=worker.handle, args=(make_result(2),), daemon=True)
    waiting.start()
    worker.interrupted.set()
    waiting.join(4)  # well before the stuck sink's own 5 s
    assert not waiting.is_alive() and worker.dropped == 1
    stuck.gate.set()
    worker.close()
    assert stuck.seen == [0, 1]
