"""What the loop's two threads share: the one-frame mailbox from capture to explain, and the loop's counts."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from edge.records import Frame


@dataclass
class LoopStats:
    """What the loop did, for the closing log line and for tests."""

    frames: int = 0  # explained
    skipped: int = 0  # not explained ([trigger], heat): shown live, not logged
    dropped: int = 0  # taken by capture but replaced before the loop got to them
    bad_frames: int = 0  # frames the explainer refused (shape, dtype)
    read_errors: int = 0
    failure: str = ""  # why the loop gave up, if it did; empty after a normal end
    stage_ms: dict[str, float] = field(default_factory=dict)  # sums; divide by frames for means

    def means(self) -> dict[str, float]:
        return {k: round(v / max(1, self.frames), 2) for k, v in self.stage_ms.items()}


class FrameMailbox:
    """A one-frame handover from the capture thread to the loop."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: tuple[Frame, float] | None = None  # (frame, capture ms)
        self.ended = False
        self.dropped = 0

    def put(self, frame: Frame, capture_ms: float, *, wait: bool, stop: threading.Event) -> None:
        with self._cond:
            if self._item is not None:
                if wait:
                    while self._item is not None and not stop.is_set():
                        self._cond.wait(0.1)
                else:
                    self.dropped += 1
            self._item = (frame, capture_ms)
            self._cond.notify_all()

    def end(self) -> None:
        with self._cond:
            self.ended = True
            self._cond.notify_all()

    def get(self, timeout: float) -> tuple[Frame, float] | None:
        with self._cond:
            self._cond.wait_for(lambda: self._item is not None or self.ended, timeout)
            item, self._item = self._item, None
            self._cond.notify_all()
            return item
