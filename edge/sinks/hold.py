"""The record outputs' wait for [faithfulness] scores: a scored frame's own record carries them.

The background worker finishes a frame's scores some frames after the loop handed that frame on. A record output (disk
log, stdout, MQTT) therefore holds, on its own worker thread (edge.sinks.base.SinkWorker), the result of a frame whose
scores are pending and every result after it (so records stay in frame order), until the scores arrive or the hold
is over: hold_s seconds, or more than hold_frames results held. The frame then goes on with
`faithfulness: {"skipped": "timeout"}` (and the worker counts the scores that came too late). The loop never waits:
only the output's thread does, and the results it holds are bounded.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

from edge.records import Result

_POLL_S = 0.05  # while holding, how often the output's thread looks for the scores (and at the end, for a stop)


class HoldSettings(Protocol):
    """What [faithfulness] says about the hold (edge.service.faithfulness_worker.FaithfulnessConfig)."""

    @property
    def enabled(self) -> bool: ...
    @property
    def hold_s(self) -> float: ...
    @property
    def hold_frames(self) -> int: ...


class ScoreHold:
    """A FIFO of results that releases each only once every pending score ahead of it (and its own) is in."""

    def __init__(self, hold_s: float, hold_frames: int, clock: Callable[[], float] = time.monotonic,
                 wait_when_full: bool = False) -> None:
        self.hold_s = hold_s
        self.hold_frames = hold_frames
        # a file source's output (the loop may wait for it): when full, its SinkWorker takes no more results instead
        # of giving the scores up; the time bound still holds
        self.wait_when_full = wait_when_full
        self._clock = clock
        self._held: deque[tuple[Result, float]] = deque()  # (result, when its wait ends), in frame order
        self.timeouts = 0  # records that went without their scores

    @classmethod
    def when(cls, settings: HoldSettings, wait_when_full: bool = False) -> ScoreHold | None:
        """A hold for one record output when scoring is on, else None."""
        if not settings.enabled:
            return None
        return cls(settings.hold_s, settings.hold_frames, wait_when_full=wait_when_full)

    @property
    def full(self) -> bool:
        return len(self._held) >= self.hold_frames

    def __len__(self) -> int:
        return len(self._held)

    def push(self, result: Result) -> list[Result]:
        """Take one result in; the results now free to go on, in order (often just this one)."""
        self._held.append((result, self._clock() + self.hold_s))
        return self.ready()

    def ready(self) -> list[Result]:
        """The results at the front whose scores are in, or whose hold is over (those then marked skipped)."""
        now = self._clock()
        out = []
        while self._held:
            result, ends = self._held[0]
            scoring = result.scoring
            if scoring is not None and not scoring.done:
                if now < ends and len(self._held) <= self.hold_frames:
                    break
                if scoring.resolve({"skipped": "timeout"}):
                    self.timeouts += 1
            out.append(self._held.popleft()[0])
        return out

    def wait_s(self) -> float | None:
        """How long the output's thread may sleep for its next frame: until the front result's hold is over, at most
        _POLL_S (the scores come from another thread, which does not wake it); None when nothing is held."""
        if not self._held:
            return None
        return min(_POLL_S, max(0.0, self._held[0][1] - self._clock()))

    def drain(self, stopping: Callable[[], bool]) -> list[Result]:
        """At the end: every held result, in order, each after its scores or the end of its hold, or at once (marked
        {"skipped": "stopped"}) once stopping() says the service is being stopped."""
        out = []
        while self._held:
            result, ends = self._held[0]
            scoring = result.scoring
            while scoring is not None and not scoring.done and not stopping() and self._clock() < ends:
                scoring.wait(min(_POLL_S, max(0.0, ends - self._clock())))
            if scoring is not None and not scoring.done:
                stopped = stopping()
                if scoring.resolve({"skipped": "stopped" if stopped else "timeout"}) and not stopped:
                    self.timeouts += 1
            out.append(self._held.popleft()[0])
        return out
