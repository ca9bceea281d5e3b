"""The sink seam: what every output receives per explained frame, the Sink protocol, and a worker-thread wrapper."""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from typing import Protocol, runtime_checkable

from edge.records import Result
from edge.sinks.hold import ScoreHold

_LOGGER = logging.getLogger(__name__)

_POLL_S = 0.1  # how often close() looks at the stop signal while it waits for a sink
_DRAIN_NOTE_S = 10.0  # how often a long drain at close() is logged


@runtime_checkable
class Sink(Protocol):
    """An output. handle() is called once per explained frame, in order; it should be quick or run in a SinkWorker."""

    name: str

    def open(self) -> None: ...

    def handle(self, result: Result) -> None: ...

    def close(self) -> None: ...


class SinkWorker:
    """Runs a sink's handle() on its own thread behind a small queue, so a slow disk or pipe never stalls the loop.

    When blocking is False a full queue drops its oldest result (counted in .dropped); when True (file sources,
    where every frame must be logged) submit() waits for room instead. close() lets every queued result through;
    only once .interrupted is set (SIGTERM/SIGINT) does it give up after interrupt_budget_s, so the service still
    stops in time. With a ScoreHold (the record outputs, when [faithfulness] is on) the thread holds a scored frame's
    result, and those after it, until its scores are in (edge.sinks.hold); the loop never waits for that.
    """

    def __init__(self, sink: Sink, *, blocking: bool, size: int = 4, interrupt_budget_s: float = 1.0,
                 hold: ScoreHold | None = None) -> None:
        self.sink = sink
        self.name = sink.name
        self.live_view = getattr(sink, "live_view", False)  # also gets the frames left unexplained
        self.blocking = blocking
        self.dropped = 0
        self.failed = 0
        self.interrupted = threading.Event()  # the run's own event once shared (edge.service.cli sets it on a signal)
        self.interrupt_budget_s = interrupt_budget_s
        self.hold = hold
        self._queue: queue.Queue[Result | None] = queue.Queue(maxsize=size)
        self._thread = threading.Thread(target=self._run, name=f"sink-{sink.name}", daemon=True)

    def open(self) -> None:
        self.sink.open()
        self._thread.start()

    def handle(self, result: Result) -> None:
        if self.blocking:
            # Waits for room as long as the sink takes, but not past a signal: a hung disk must not hold the loop.
            while not self.interrupted.is_set():
                try:
                    self._queue.put(result, timeout=_POLL_S)
                    return
                except queue.Full:
                    pass
            self.dropped += 1
            return
        while True:
            try:
                self._queue.put_nowait(result)
                return
            except queue.Full:
                try:
                    self._queue.get_nowait()
                    self.dropped += 1
                except queue.Empty:
                    pass

    def _run(self) -> None:
        hold = self.hold
        while True:
            ready: list[Result] | None
            if hold is not None and hold.wait_when_full and hold.full and not self.interrupted.is_set():
                time.sleep(hold.wait_s() or 0.0)  # full: the results wait in the queue, the loop behind it
                ready = hold.ready()
            else:
                ready = self._take(hold)
                if ready is None:
                    break
            for each in ready:
                self._handle(each)
        if hold is not None:
            for each in hold.drain(self.interrupted.is_set):
                self._handle(each)

    def _take(self, hold: ScoreHold | None) -> list[Result] | None:
        """The results free to go on after the next one from the queue; None at its end marker."""
        try:  # while results are held, wake when the front one's hold is over
            result = self._queue.get(timeout=hold.wait_s() if hold is not None else None)
        except queue.Empty:
            return hold.ready() if hold is not None else []
        if result is None:
            return None
        return [result] if hold is None else hold.push(result)

    def _handle(self, result: Result) -> None:
        try:
            self.sink.handle(result)
        except Exception:  # the loop boundary of this thread: one bad frame must not end the sink
            self.failed += 1
            _LOGGER.exception("sink %s failed on frame %d", self.name, result.frame.index)

    def close(self, timeout: float | None = None) -> None:
        """Let every queued result through, then close the sink. The wait is cut short only interrupt_budget_s after
        a signal (.interrupted set, before or during the wait), or after timeout seconds if one is given."""
        ended = False  # the end marker is queued behind the results
        now = time.monotonic()
        deadline = None if timeout is None else now + timeout
        signalled = False
        next_note = now + _DRAIN_NOTE_S
        while self._thread.is_alive():
            if ended:
                self._thread.join(_POLL_S)
            else:
                try:
                    self._queue.put(None, timeout=_POLL_S)
                    ended = True
                except queue.Full:
                    pass
            now = time.monotonic()
            if not signalled and self.interrupted.is_set():
                signalled = True
                deadline = min(deadline or math.inf, now + self.interrupt_budget_s)
            if deadline is not None and now >= deadline:
                if self._thread.is_alive():
                    _LOGGER.warning("sink %s did not finish in time at shutdown: %d results not handled", self.name,
                                    self._queue.qsize() - int(ended) + (len(self.hold) if self.hold is not None else 0))
                break
            if now >= next_note:  # a long drain at the end of a file source says what it waits for
                next_note = now + _DRAIN_NOTE_S
                _LOGGER.info("sink %s: handling the last %d results", self.name, self._queue.qsize())
        self.sink.close()
