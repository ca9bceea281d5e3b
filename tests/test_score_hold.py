"""The record outputs' hold for [faithfulness] scores (edge.sinks.hold): a scored frame's own record carries its scores,
records stay in frame order, the loop's handle() never waits, the hold is bounded, and a stop loses no record."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from edge.explain.explainer import Explanation
from edge.records import Frame, PendingScores, Result
from edge.sinks import DiskLogConfig, DiskLogSink, ScoreHold, SinkWorker, read_jsonl
from edge.sinks.logdir import JSONL

NAMES = ("Apfel", "Orange", "Tomate")
SCORES = {"frame": 3, "class": "Apfel", "method": "gradcam", "confidence_change": -0.1, "deletion_auc": 0.25,
          "insertion_auc": 0.75, "passes": 41}


def _result(index: int, scoring: PendingScores | None = None) -> Result:
    probabilities = np.array([0.6, 0.2, 0.2], np.float32)  # (3,) float32
    cam = np.eye(4, dtype=np.float32)  # (4, 4) float32
    image = np.full((48, 64, 3), 10 * index, np.uint8)  # (48, 64, 3) uint8
    ex = Explanation(probabilities=probabilities, class_index=0, label="Apfel", score=2.0, cam=cam, cam_raw=cam,
                     method="gradcam", timings={})
    return Result(frame=Frame(image=image, index=index, timestamp=1_700_000_000.0 + index), explanation=ex, cam=cam,
                  top=[("Apfel", 0.6)], source="synthetic", fps=5.0, class_names=NAMES, drawn=image, scoring=scoring)


def _log_worker(tmp_path: Path, hold: ScoreHold) -> SinkWorker:
    config = DiskLogConfig(dir=str(tmp_path / "log"), every_frame=True, save_frames=False, save_overlays=False,
                           fsync=False)
    worker = SinkWorker(DiskLogSink(config), blocking=True, hold=hold)
    worker.open()
    return worker


def _frames(tmp_path: Path) -> list[int]:
    return [r["frame"] for r in read_jsonl(tmp_path / "log" / JSONL)]


def test_the_scored_frames_record_carries_its_scores_in_order(tmp_path: Path) -> None:
    pending = PendingScores()
    worker = _log_worker(tmp_path, ScoreHold(hold_s=30.0, hold_frames=32))
    slowest = 0.0
    try:
        for i in range(10):
            t0 = time.perf_counter()
            worker.handle(_result(i, pending if i == 3 else None))
            slowest = max(slowest, time.perf_counter() - t0)
        time.sleep(0.5)
        assert _frames(tmp_path) == [0, 1, 2]  # frame 3 and those after it wait for frame 3's scores
        pending.resolve(SCORES)  # as the worker does, frames later
        deadline = time.monotonic() + 10
        while len(_frames(tmp_path)) < 10 and time.monotonic() < deadline:
            time.sleep(0.05)
        records = read_jsonl(tmp_path / "log" / JSONL)
    finally:
        worker.close()
    assert [r["frame"] for r in records] == list(range(10))
    assert records[3]["faithfulness"] == SCORES
    assert all("faithfulness" not in r for r in records if r["frame"] != 3)
    assert slowest < 0.2, f"handle() waited {slowest:.3f} s: the loop must never wait for scores"


def test_a_stop_while_a_score_is_pending_loses_no_record(tmp_path: Path) -> None:
    worker = _log_worker(tmp_path, ScoreHold(hold_s=60.0, hold_frames=32))
    for i in range(10):
        worker.handle(_result(i, PendingScores() if i == 3 else None))  # frame 3's scores never come
    worker.interrupted.set()  # SIGTERM
    t0 = time.monotonic()
    worker.close()
    assert time.monotonic() - t0 < 2.0
    records = read_jsonl(tmp_path / "log" / JSONL)
    assert [r["frame"] for r in records] == list(range(10))
    assert records[3]["faithfulness"] == {"skipped": "stopped"}


def test_a_normal_end_waits_out_the_hold_then_writes_everything(tmp_path: Path) -> None:
    hold = ScoreHold(hold_s=0.5, hold_frames=32)
    worker = _log_worker(tmp_path, hold)
    late = PendingScores()
    for i in range(6):
        worker.handle(_result(i, late if i == 1 else PendingScores({"skipped": "busy"}) if i == 4 else None))
    worker.close()  # the end of a file source: no signal
    records = read_jsonl(tmp_path / "log" / JSONL)
    assert [r["frame"] for r in records] == list(range(6))
    assert records[1]["faithfulness"] == {"skipped": "timeout"} and hold.timeouts == 1
    assert records[4]["faithfulness"] == {"skipped": "busy"}
    assert not late.resolve(SCORES)  # too late: the worker is told (it counts them as late)


def test_the_hold_is_bounded_in_frames_and_seconds() -> None:
    now = [0.0]
    hold = ScoreHold(hold_s=2.0, hold_frames=4, clock=lambda: now[0])
    first = PendingScores()
    assert hold.push(_result(0, first)) == []
    assert [hold.push(_result(i)) for i in range(1, 4)] == [[]] * 3  # 4 held: at the bound
    released = hold.push(_result(4))  # 5: one over it
    assert [r.frame.index for r in released] == [0, 1, 2, 3, 4] and first.value == {"skipped": "timeout"}
    second = PendingScores()
    assert hold.push(_result(5, second)) == [] and hold.wait_s() == 0.05  # polls for the scores
    now[0] = 1.0
    assert hold.push(_result(6)) == []
    now[0] = 1.99
    assert hold.wait_s() == pytest.approx(0.01)
    now[0] = 2.5
    assert [r.frame.index for r in hold.ready()] == [5, 6] and second.value == {"skipped": "timeout"}
    assert len(hold) == 0 and hold.wait_s() is None
    done = PendingScores(SCORES)
    assert [r.frame.index for r in hold.push(_result(7, done))] == [7]  # scores already in: straight through


def test_the_hold_ends_on_time_without_a_next_frame(tmp_path: Path) -> None:
    """The output thread wakes when the hold ends, not only for the next frame (a still scene, a stalled camera)."""
    worker = _log_worker(tmp_path, ScoreHold(hold_s=0.3, hold_frames=32))
    try:
        worker.handle(_result(0, PendingScores()))
        deadline = time.monotonic() + 5
        while not _frames(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _frames(tmp_path) == [0]  # written at the end of its 0.3 s hold, with no frame after it
    finally:
        worker.close()
    assert read_jsonl(tmp_path / "log" / JSONL)[0]["faithfulness"] == {"skipped": "timeout"}


def test_a_file_sources_full_hold_waits_for_the_scores_instead_of_giving_them_up(tmp_path: Path) -> None:
    """An output the loop may wait for (a file source's): when hold_frames results are held, the output takes no more
    (the loop waits behind its queue) and the scored frame's record still gets its scores; a live source's gives
    them up instead (the loop must not wait), as the hold's frame bound says."""
    import threading

    class CountedHold(ScoreHold):
        most = 0

        def push(self, result: Result) -> list[Result]:
            CountedHold.most = max(CountedHold.most, len(self) + 1)
            return super().push(result)

    records = {}
    for wait in (True, False):
        pending = PendingScores()
        folder = tmp_path / str(wait)
        worker = _log_worker(folder, CountedHold(hold_s=30.0, hold_frames=2, wait_when_full=wait))
        timer = threading.Timer(0.5, pending.resolve, (SCORES,))  # the scores come after 12 more frames were offered
        timer.start()
        try:
            for i in range(16):
                worker.handle(_result(i, pending if i == 1 else None))
        finally:
            worker.close()
            timer.join()
        records[wait] = read_jsonl(folder / "log" / JSONL)
    assert [r["frame"] for r in records[True]] == list(range(16))
    assert records[True][1]["faithfulness"] == SCORES
    assert [r["frame"] for r in records[False]] == list(range(16))
    assert records[False][1]["faithfulness"] == {"skipped": "timeout"}
    assert CountedHold.most <= 3  # never more than hold_frames held, one past it for a moment in the live case
