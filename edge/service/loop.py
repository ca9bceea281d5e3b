"""The on-device loop: a capture thread feeding an explain loop that hands results to the sinks (which draw them).

Capture never waits for the explainer on a live source: a newer frame replaces one not yet taken, and the
replaced frame is counted as dropped. File sources (images:, video files) wait instead, so no frame is lost.
One stop Event (set by SIGTERM/SIGINT, a closed preview or the end of the source) ends everything. At a normal end
(the end of a file source, max_frames) the sinks then handle every result still queued, however long that takes;
after SIGTERM/SIGINT shutdown takes at most about 2 s, with whatever the sinks finished in that time flushed and the
source closed.
Which frames are explained is edge.service.pacing's call ([trigger], the heat back-off); a frame it skips is counted,
not logged, and shown by the live views (preview, browser) under the last explanation with that explanation's age.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from edge.errors import InputError
from edge.explain.cam.smoothing import Smoothing
from edge.explain.explainer import Explainer
from edge.explain.render import CamSmoother, RenderConfig, render, top_entries
from edge.live import LiveSettings, Settings
from edge.records import Frame, Result
from edge.service.drift import DriftWorker
from edge.service.faithfulness_worker import FaithfulnessWorker
from edge.service.mailbox import FrameMailbox, LoopStats
from edge.service.pacing import Pacing, draw_age
from edge.service.systemd_notify import Notifier
from edge.sinks.base import Sink
from edge.sources.base import FrameSource, SourceError

_LOGGER = logging.getLogger(__name__)

SHUTDOWN_BUDGET_S = 1.5  # for joining threads and flushing sinks; the rest of the 2 s is process exit


@dataclass(frozen=True)
class LoopConfig:
    """[loop]: how long to run and how to ride out a failing camera."""

    max_frames: int = field(default=0, metadata={"range": (0, 2**62), "doc": "stop after N frames; 0 = no limit"})
    no_frame_timeout_s: float = field(default=30.0, metadata={
        "range": (0.5, 86400.0), "doc": "exit non-zero after this long without a frame (systemd restarts it)"})
    reopen_backoff_s: float = field(default=0.5, metadata={
        "range": (0.01, 60.0), "doc": "first wait before reopening a failed source; doubles up to 10 s"})
    status_every_s: float = field(default=60.0, metadata={"range": (1.0, 86400.0), "doc": "summary log interval"})
    max_temp_c: float = field(default=0.0, metadata={"range": (0.0, 150.0), "doc": (
        "above this CPU temperature (C) explain at most one frame every hot_every_s; 0 = off")})
    temp_hysteresis_c: float = field(default=5.0, metadata={"range": (0.5, 50.0), "doc": (
        "the full rate returns below max_temp_c minus this")})
    hot_every_s: float = field(default=2.0, metadata={"range": (0.05, 3600.0), "doc": (
        "seconds between explanations while above max_temp_c")})


@dataclass(frozen=True)
class Explaining:
    """What the loop asks of every frame: the CAM method, the class (None: the top one), how many classes to report,
    how to draw; live: the browser view's controls, read once per frame, which override method, target, alpha and
    threshold; faithfulness: the worker that scores some frames' maps ([faithfulness]); drift: the drift monitor."""

    method: str = "gradcam"
    target: str | None = None
    top_k: int = 3
    render: RenderConfig = field(default_factory=RenderConfig)
    live: LiveSettings | None = None
    faithfulness: FaithfulnessWorker | None = None
    pacing: Pacing | None = None  # which frames to explain ([trigger], the heat back-off); None: every frame
    drift: DriftWorker | None = None
    smoothing: Smoothing = field(default_factory=Smoothing)  # [model] aug_smooth, eigen_smooth
    method_check: Callable[[str], object] | None = None  # a method chosen in the browser view: warn if too slow


class Loop:
    """Runs source -> explainer -> render -> sinks until the source ends, max_frames, or stop is set."""

    def __init__(self, explainer: Explainer, source: FrameSource, sinks: Sequence[Sink], *, config: LoopConfig,
                 explaining: Explaining, stop: threading.Event, notifier: Notifier | None = None) -> None:
        self.explainer = explainer
        self.source = source
        self.sinks = list(sinks)
        self.config = config
        self.render_config = render_config = explaining.render
        self.stop = stop
        self.notifier = notifier or Notifier({})
        self.method = explaining.method
        self.smoothing = explaining.smoothing
        self.target = explaining.target
        self.top_k = min(explaining.top_k, len(explainer.class_names))
        live = explaining.live
        self.stats = LoopStats()
        self.mailbox = FrameMailbox()
        self._smoother = CamSmoother(render_config.smoothing)
        self._fps = 0.0
        self._last_done = 0.0
        self._sha256 = explainer.manifest.sha256
        self.drift = explaining.drift  # the drift monitor, fed without waiting (edge.service.drift), or None
        self.live = live  # the browser view's controls: method, target, alpha, threshold, read once per frame
        self._live_seen: tuple[Settings | None, RenderConfig] = (None, render_config)
        self._method_check = explaining.method_check
        self._methods_checked = {explaining.method}  # the configured one was checked at start
        self.faithfulness = explaining.faithfulness  # [faithfulness]: offered every frame, never waited for
        self.pacing = explaining.pacing or Pacing()
        self._live_views = [sink for sink in self.sinks if getattr(sink, "live_view", False)]
        self._last: Result | None = None  # the last explained frame's result, shown under skipped frames

    def run(self) -> LoopStats:
        """Capture and explain until done; the source must be open, and is read on a capture thread."""
        capture = threading.Thread(target=self._capture, name="capture", daemon=True)
        capture.start()
        try:
            self._explain_loop()
        except Exception as e:  # the loop boundary: log once with the traceback, exit non-zero so systemd restarts
            _LOGGER.exception("the loop failed")
            self.stats.failure = f"loop failed: {e}"
        finally:
            self.stop.set()
            self.notifier.stopping()
            capture.join(SHUTDOWN_BUDGET_S / 2)
            if capture.is_alive():
                _LOGGER.warning("capture thread still in a read call at shutdown")
            self.stats.dropped = self.mailbox.dropped
            _LOGGER.info("stopped after %d frames (%d not explained, %d dropped, %d bad, %d read errors); mean ms %s",
                         self.stats.frames, self.stats.skipped, self.stats.dropped, self.stats.bad_frames,
                         self.stats.read_errors, self.stats.means())
        return self.stats

    def _capture(self) -> None:
        backoff = self.config.reopen_backoff_s
        lost_at = 0.0  # monotonic time the source started failing; 0 while it delivers
        while not self.stop.is_set():
            t0 = time.perf_counter()
            try:
                frame = self.source.read()
            except Exception as e:  # the capture thread's boundary: any failure means reopen, never a dead thread
                self.stats.read_errors += 1
                if not lost_at:  # one journal line when the source is lost, one when it is back
                    lost_at = time.monotonic()
                    if isinstance(e, SourceError | OSError):
                        _LOGGER.warning("%s: %s; reopening (backoff %.1f s doubling to 10 s)", self.source.name, e,
                                        backoff)
                    else:
                        _LOGGER.exception("%s: read failed; reopening", self.source.name)
                else:
                    _LOGGER.debug("%s: still failing: %s", self.source.name, e)
                self.notifier.status(f"{self.source.name} lost for {time.monotonic() - lost_at:.0f} s: {e}")
                if self.stop.wait(backoff):
                    break
                backoff = min(backoff * 2, 10.0)
                self._reopen()
                continue
            if frame is None:
                self.mailbox.end()
                return
            if lost_at:
                _LOGGER.info("%s: frames again after %.1f s", self.source.name, time.monotonic() - lost_at)
                self.notifier.status(f"explaining {self.source.name}")
                lost_at = 0.0
            backoff = self.config.reopen_backoff_s
            capture_ms = (time.perf_counter() - t0) * 1e3 - frame.paced_ms  # the pacing sleep is not capture
            self.mailbox.put(frame, capture_ms, wait=not self.source.live, stop=self.stop)
        self.mailbox.end()

    def _reopen(self) -> None:
        try:
            self.source.close()
            self.source.open()
        except (SourceError, OSError) as e:
            _LOGGER.debug("%s: reopen failed: %s", self.source.name, e)

    def _explain_loop(self) -> None:
        last_frame = last_status = time.monotonic()
        while not self.stop.is_set():
            item = self.mailbox.get(timeout=0.1)
            now = time.monotonic()
            if item is None:
                if self.mailbox.ended:
                    return
                if now - last_frame > self.config.no_frame_timeout_s:
                    self.stats.failure = f"no frame from {self.source.name} for {self.config.no_frame_timeout_s} s"
                    _LOGGER.error("%s; exiting so the service restarts", self.stats.failure)
                    return
                continue
            last_frame = now
            self._process(*item)
            if now - last_status >= self.config.status_every_s:
                last_status = now
                self.notifier.status(f"{self.stats.frames} frames, {self._fps:.1f} fps, {self.mailbox.dropped} dropped")
                _LOGGER.info("%d frames, %.1f fps, %d dropped", self.stats.frames, self._fps, self.mailbox.dropped)
            if self.config.max_frames and self.stats.frames >= self.config.max_frames:
                return

    def _process(self, frame: Frame, capture_ms: float) -> None:
        if self.pacing.decide(frame.model_image, time.monotonic()) is None:
            self._show_unexplained(frame)
            return
        method, target, config = self._settings()
        smooth = self.smoothing
        t0 = time.perf_counter()
        try:
            if frame.sensor is None:
                ex = self.explainer.explain(frame.model_image, target=target, method=method, aug_smooth=smooth.aug,
                                            eigen_smooth=smooth.eigen)
            else:  # the AI Camera: the trunk ran on the sensor, A came with the frame
                ex = frame.sensor.explain(self.explainer, target=target, method=method, eigen_smooth=smooth.eigen)
        except InputError as e:
            self.stats.bad_frames += 1
            _LOGGER.warning("frame %d skipped: %s (%d so far)", frame.index, e, self.stats.bad_frames)
            return
        cam = self._smoother.update(ex.cam, ex.class_index)
        scoring = None  # [faithfulness]: this frame's scores, delivered later (the record outputs hold it for them)
        if self.faithfulness is not None and frame.sensor is None:
            scoring = self.faithfulness.offer(frame.index, frame.model_image, ex)
        top = top_entries(ex.probabilities, self.explainer.class_names, self.top_k)
        self._tick_fps()
        t2 = time.perf_counter()
        timings = {"capture": capture_ms, **ex.timings, "explain": (t2 - t0) * 1e3}
        fps = self._fps
        if self.drift is not None:
            self.drift.offer(ex, frame.image)
        # Drawn by the first sink that needs it, on that sink's thread: this thread goes back to explaining.
        result = Result(frame=frame, explanation=ex, cam=cam, top=top, source=self.source.name, fps=fps,
                        timings=timings, dropped=self.mailbox.dropped, model_sha256=self._sha256,
                        class_names=tuple(self.explainer.class_names), scoring=scoring,
                        drift=None if self.drift is None else self.drift.status(),
                        draw=lambda: render(frame.image, ex, config, top=top, cam=cam, fps=fps))
        for sink in self.sinks:
            sink.handle(result)
        timings["sinks"] = (time.perf_counter() - t2) * 1e3
        self.stats.frames += 1
        for stage, ms in timings.items():
            self.stats.stage_ms[stage] = self.stats.stage_ms.get(stage, 0.0) + ms
        self.pacing.explained(timings, ex.label, float(ex.probabilities[ex.class_index]), self.mailbox.dropped)
        self._last = result
        self.notifier.ready(f"explaining {self.source.name}")
        self.notifier.watchdog()

    def _show_unexplained(self, frame: Frame) -> None:
        """A frame the pacing skipped: counted, not logged; the live views show it under the last explanation."""
        self.stats.skipped += 1
        self.notifier.watchdog()  # a still scene is a healthy service
        last = self._last
        if last is None or not self._live_views:
            return
        config = self._settings()[2]
        age = self.pacing.age_s(time.monotonic()) or 0.0
        ex, top, cam, fps = last.explanation, last.top, last.cam, self._fps
        result = replace(last, frame=frame, explained=False, drawn=None, render_ms=None, dropped=self.mailbox.dropped,
                         timings={}, draw=lambda: draw_age(render(frame.image, ex, config, top=top, cam=cam, fps=fps),
                                                           age))
        for sink in self._live_views:
            sink.handle(result)

    def _settings(self) -> tuple[str, str | None, RenderConfig]:
        """(method, target, render config) for this frame: the live controls' if there are any."""
        if self.live is None:
            return self.method, self.target, self.render_config
        live = self.live.get()
        if live is not self._live_seen[0]:  # changed: one new RenderConfig per change, not per frame
            self._live_seen = (live, replace(self.render_config, alpha=live.alpha, threshold=live.threshold))
            if self._method_check is not None and live.method not in self._methods_checked:
                self._methods_checked.add(live.method)  # once per method: the check runs the feature model
                self._method_check(live.method)
        return live.method, live.target, self._live_seen[1]

    def _tick_fps(self) -> None:
        now = time.perf_counter()
        if self._last_done:
            rate = 1.0 / max(now - self._last_done, 1e-6)
            self._fps = rate if self._fps == 0 else 0.9 * self._fps + 0.1 * rate
        self._last_done = now
