"""[drift]: the explanation-drift monitor in the service, on a thread of its own so the loop never waits for it.

The loop appends each explained frame to an inbox (skipped when the monitor is behind) without waking anything: the
monitor's thread empties the inbox every POLL_S, so the loop pays no lock, no wake-up and no context switch per frame
(docs/drift.md, the cost). The loop stamps each Result with the monitor's latest status. With learn_frames the
baseline is learned from the first frames and saved beside the log, and a restart loads it instead of learning again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from edge.explain.drift_baseline import Baseline, BaselineBuilder, BaselineError
from edge.explain.drift_monitor import DriftMaps, DriftMonitor, DriftSettings
from edge.explain.explainer import Explainer, Explanation
from edge.http.sink import views_among

_LOGGER = logging.getLogger(__name__)
LEARNED_NAME = "drift-baseline.npz"
POLL_S = 0.02  # the monitor lags the loop by at most this; its decisions span hundreds of frames
INBOX = 64  # frames waiting for the monitor at most (each holds its frame's image)
YIELD_EVERY = 4  # frames learned between offers of the interpreter lock to the loop


@dataclass(frozen=True)
class DriftConfig:
    """[drift]: watch whether the model's reasons (its maps) move away from a baseline."""

    enabled: bool = field(default=False, metadata={"doc": "run the drift monitor (--drift)"})
    baseline: str = field(default="", metadata={"doc": "baseline .npz from `python -m edge baseline`; empty = "
                                                "learn_frames"})
    learn_frames: int = field(default=500, metadata={"range": (1, 10_000_000), "doc": (
        "without a baseline file: learn one over the first N frames, saved as drift-baseline.npz in [log] dir")})
    window: int = field(default=50, metadata={"range": (2, 100_000), "doc": "a class's running mean map weighs its "
                                              "last ~N frames"})
    hold: int = field(default=30, metadata={"range": (1, 100_000), "doc": "frames a distance stays above its "
                                            "threshold before an alert (and below before it clears)"})
    min_frames: int = field(default=30, metadata={"range": (1, 100_000), "doc": "a class seen fewer times waits "
                                                  "instead of alarming"})

    def settings(self) -> DriftSettings:
        return DriftSettings(window=self.window, hold=self.hold, min_frames=self.min_frames)


class DriftWorker:
    """Learns or monitors on its own thread; status() is what the latest frame it handled showed."""

    def __init__(self, config: DriftConfig, *, model_sha256: str, class_names: tuple[str, ...],
                 grid: tuple[int, int], log_dir: str = "") -> None:
        self.config = config
        self.learned_path = Path(log_dir) / LEARNED_NAME if log_dir else None
        path = Path(config.baseline) if config.baseline else self.learned_path
        self.monitor: DriftMonitor | None = None
        self.builder: BaselineBuilder | None = None
        if path is not None and (config.baseline or path.exists()):
            baseline = Baseline.load(path)
            baseline.check(path, model_sha256, grid)
            self.monitor = DriftMonitor(baseline, config.settings())
            _LOGGER.info("drift: monitoring against %s", path)
        else:
            self.builder = BaselineBuilder(model_sha256, class_names, grid)
        self._status: dict[str, Any] = {"state": "learning" if self.builder else "ok", "distance": 0.0}
        self._inbox: deque[tuple[Explanation, NDArray[np.uint8]]] = deque()  # append and popleft: atomic
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="drift", daemon=True)
        self._events: list[dict[str, Any]] = []  # alert and clear statuses not yet handed to the loop
        self._lock = threading.Lock()
        self.dropped = 0
        self.handled = 0  # frames the monitor's thread took from the inbox
        self.batches = 0  # the polls that found frames waiting (the batches the monitor took them in)
        self.busy_s = 0.0  # CPU time that thread spent on them (its cost, as tools.bench.drift_cost reports it)

    def start(self, sinks: Iterable[object] = ()) -> None:
        """Starts the monitor's thread; a browser view among sinks shows its maps (maps())."""
        for view in views_among(sinks):
            view.board.drift = self.maps
        self._thread.start()

    def maps(self) -> DriftMaps | None:
        """The baseline's and the running mean maps per class; None while the baseline is being learned."""
        monitor = self.monitor
        return None if monitor is None else monitor.snapshot()

    def status(self) -> dict[str, Any]:
        """The latest status, with the alerts and clearings since the last call under "events" (a list)."""
        with self._lock:
            events, self._events = self._events, []
        return self._status | {"events": events} if events else self._status

    def offer(self, ex: Explanation, image: NDArray[np.uint8]) -> None:
        """Never blocks nor wakes a thread: a frame the monitor has no room for is skipped (its running means hardly
        notice). ex and image are kept by reference: the loop makes new ones for every frame."""
        if len(self._inbox) >= INBOX:
            self.dropped += 1
        else:
            self._inbox.append((ex, image))

    def close(self, timeout: float = 1.0) -> None:
        """Handles the frames still waiting (a baseline being learned is saved), for at most timeout seconds."""
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            stopping = self._stop.wait(POLL_S)  # then the frames still waiting, as close() promises
            started = time.thread_time()
            batch = [self._inbox.popleft() for _ in range(len(self._inbox))]
            self.handled += len(batch)
            self.batches += bool(batch)
            try:
                self._handle(batch)
            except (BaselineError, OSError, ValueError) as e:
                _LOGGER.error("drift: %s; the monitor stops", e)
                return
            self.busy_s += time.thread_time() - started

    def _handle(self, batch: list[tuple[Explanation, NDArray[np.uint8]]]) -> None:
        """Learning takes the frames one by one; monitoring takes the rest as one batch (DriftMonitor.update_many)."""
        for done, (ex, image) in enumerate(batch):
            if self.builder is None:
                batch = batch[done:]
                break
            if done % YIELD_EVERY == YIELD_EVERY - 1:
                time.sleep(0)  # the loop gets the interpreter lock back within a few frames' work if it waits
            self._learn(ex.class_index, float(ex.probabilities[ex.class_index]), ex.cam, image)
        else:
            return
        assert self.monitor is not None
        status = self.monitor.update_many([(ex.class_index, ex.cam, image) for ex, image in batch])
        self._status = status.as_dict()
        if status.event:
            _LOGGER.warning("drift: %s %s", status.event, self._status)
            with self._lock:
                self._events.append(self._status)

    def _learn(self, class_index: int, confidence: float, cam: NDArray[np.float32],
               image: NDArray[np.uint8]) -> None:
        assert self.builder is not None
        self.builder.add(class_index, confidence, cam, image)
        if self.builder.count < self.config.learn_frames:
            self._status = {"state": "learning", "distance": 0.0, "frames": self.builder.count}
            return
        baseline = self.builder.build()
        if self.learned_path is not None:
            try:
                baseline.save(self.learned_path)
                _LOGGER.info("drift: baseline learned over %d frames, saved as %s", self.builder.count,
                             self.learned_path)
            except BaselineError as e:  # a full disk: the monitor still starts; a restart learns again
                _LOGGER.error("drift: %s", e)
        self.builder, self.monitor = None, DriftMonitor(baseline, self.config.settings())
        self._status = {"state": "ok", "distance": 0.0}


def start_drift(config: DriftConfig, explainer: Explainer, log_dir: str,
                sinks: Iterable[object] | None = None) -> DriftWorker | None:
    """The drift monitor when [drift] is on (another model's baseline: one line, exit 2); sinks None: only checked."""
    if not config.enabled:
        return None
    h, w, _ = explainer.manifest.feature_shape
    worker = DriftWorker(config, model_sha256=explainer.manifest.sha256, class_names=tuple(explainer.class_names),
                         grid=(h, w), log_dir=log_dir)
    if sinks is not None:
        worker.start(sinks)  # its maps on the browser view, if there is one
    return worker
