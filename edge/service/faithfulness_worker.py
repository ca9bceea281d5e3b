"""[faithfulness]: live frames scored in a background worker that never delays the loop.

Every `every_n`-th explained frame is offered to one worker thread with its own interpreter (edge.explain.trunk_passes)
through a one-slot handover: when the worker is still scoring the previous frame, the new one is skipped and counted,
never queued. offer() answers with the frame's PendingScores, which the worker fills when it is done (or with
{"skipped": reason}); the record outputs hold that frame's result until then (edge.sinks.hold), so the scores go into
that frame's own record. A running mean per class is kept for the dashboard.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from edge.explain.explainer import Explainer, Explanation
from edge.explain.faithfulness import FaithfulnessScorer
from edge.explain.trunk_passes import TrunkPasses
from edge.http.sink import views_among
from edge.records import PendingScores

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class FaithfulnessConfig:
    """[faithfulness]: score live frames' heatmaps in the background (docs/faithfulness.md)."""

    enabled: bool = field(default=False, metadata={"doc": "score every N-th frame's heatmap in a background worker"})
    every_n: int = field(default=1000, metadata={
        "range": (1, 2**31), "doc": "score every N-th explained frame (skipped while the worker is busy)"})
    curves: bool = field(default=True, metadata={
        "doc": "also deletion and insertion AUC (41 feature-model passes a frame; off: 2, the confidence scores)"})
    score: str = field(default="probability", metadata={
        "choices": ("probability", "logit"), "doc": "the class score the perturbations move"})
    threads: int = field(default=1, metadata={"range": (1, 64), "doc": "TFLite threads of the worker's interpreter"})
    hold_s: float = field(default=5.0, metadata={"range": (0.0, 600.0), "doc": (
        "the log, stdout and MQTT hold a scored frame's record this long for its scores (then: skipped timeout)")})
    hold_frames: int = field(default=64, metadata={"range": (1, 100_000), "doc": (
        "and hold at most this many frames meanwhile (each keeps its image in memory)")})


@dataclass
class _Job:
    frame: int
    image: NDArray[np.uint8]  # (H, W, 3) uint8, a copy: the source may reuse its buffer
    cam_raw: NDArray[np.float32]  # (h, w) float32
    class_index: int
    label: str
    method: str
    pending: PendingScores  # where the scores go, for the frame's own record


class FaithfulnessWorker:
    """One scoring thread; offer() never blocks (a busy worker skips the frame and counts it)."""

    def __init__(self, explainer: Explainer, config: FaithfulnessConfig) -> None:
        self.config = config
        self._explainer = explainer
        self._scorer = FaithfulnessScorer(TrunkPasses.for_explainer(explainer, num_threads=config.threads),
                                          score=config.score, curves=config.curves)
        self._cond = threading.Condition()
        self._job: _Job | None = None
        self._busy = False
        self._stop = False
        self._current: _Job | None = None  # the job being scored
        self._means: dict[str, dict[str, float]] = {}  # class name -> score -> running mean, and "n"
        self._means_lock = threading.Lock()  # this thread writes, the browser view's HTTP threads read
        self.scored = 0
        self.skipped = 0
        self.offered = 0
        self.late = 0  # scored after their frame's record had to go without them
        self.cpu_s = 0.0  # CPU seconds this thread spent scoring (for tools.bench)
        self._thread = threading.Thread(target=self._run, name="faithfulness", daemon=True)
        self._thread.start()

    def offer(self, frame_index: int, image: NDArray[np.uint8], ex: Explanation) -> PendingScores | None:
        """Called by the loop for every frame: every every_n-th is handed over if the worker is free, and gets its
        PendingScores (already {"skipped": "busy"} when the worker was not free); the others get None."""
        self.offered += 1
        if (self.offered - 1) % self.config.every_n:
            return None
        with self._cond:
            if self._stop:
                return PendingScores({"skipped": "stopped"})
            if self._busy or self._job is not None:
                self.skipped += 1
                return PendingScores({"skipped": "busy"})
            pending = PendingScores()
            self._job = _Job(frame_index, image.copy(), ex.cam_raw, ex.class_index, ex.label, ex.method, pending)
            self._cond.notify()
        return pending

    def class_means(self) -> dict[str, dict[str, float]]:
        """Per class name, each score's running mean over every frame scored, and "n": a copy."""
        with self._means_lock:
            return {name: dict(mean) for name, mean in self._means.items()}

    def show_on(self, sinks: Iterable[object]) -> None:
        """The running means per class on the browser views among sinks (all scored frames, not only those shown)."""
        for view in views_among(sinks):
            view.board.heatmaps.faithfulness = self.class_means

    def close(self, timeout: float = 1.0) -> None:
        """Stop; a frame not scored by then gets {"skipped": "stopped"}, so no record waits for it."""
        with self._cond:
            self._stop = True
            waiting, self._job = self._job, None
            self._cond.notify()
        if waiting is not None:
            waiting.pending.resolve({"skipped": "stopped"})
        self._thread.join(timeout)
        with self._cond:
            current = self._current
        if current is not None:  # still scoring after the timeout: its record goes now (the thread is a daemon)
            current.pending.resolve({"skipped": "stopped"})
        if self.offered:
            _LOGGER.info("faithfulness: %d frames scored, %d skipped (worker busy), %d too late for their record",
                         self.scored, self.skipped, self.late)

    def _run(self) -> None:
        # Linux: this thread alone at the lowest CPU priority, so that the loop's threads come first (elsewhere, or
        # not permitted: an ordinary thread)
        with contextlib.suppress(AttributeError, OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._job is not None or self._stop)
                if self._stop:
                    return
                job, self._job, self._busy = self._job, None, True
                self._current = job
            assert job is not None  # woken with a job, not a stop
            started = time.thread_time()
            try:
                record = self._score(job)
            except Exception:  # the worker's boundary: a failed score is logged, the loop goes on
                _LOGGER.exception("faithfulness scoring of frame %d failed", job.frame)
                record = None
            self.cpu_s += time.thread_time() - started
            with self._cond:
                self._busy = False
                self._current = None
            # refused: the record went first, its hold over ("timeout", counted) or the worker stopped ("stopped")
            if not job.pending.resolve(record or {"skipped": "failed"}) and record is not None \
                    and (job.pending.value or {}).get("skipped") == "timeout":
                self.late += 1

    def _score(self, job: _Job) -> dict[str, Any]:
        x = self._explainer.preprocess(job.image)
        result = self._scorer(x, job.cam_raw, job.class_index)
        scores = {name: round(value, 6) for name, value in result.scores.items()}
        with self._means_lock:
            mean = self._means.setdefault(job.label, {"n": 0.0})
            mean["n"] += 1
            for name, value in scores.items():
                mean[name] = mean.get(name, 0.0) + (value - mean.get(name, 0.0)) / mean["n"]
        self.scored += 1
        return {"frame": job.frame, "class": job.label, "method": job.method, **scores,
                "passes": result.passes, **({"note": result.note} if result.note else {})}
