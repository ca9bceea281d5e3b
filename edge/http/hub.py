"""The newest overlay JPEGs and their records, keyed by sequence number; viewers wait on it for the next one."""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any

from edge.records import Result


@dataclass(frozen=True)
class Published:
    """One frame as the page sees it: its sequence number, overlay JPEG and JSON record (with "seq" in it)."""

    seq: int
    jpeg: bytes
    record: dict[str, Any]
    result: Result | None = None  # for the snapshot's plain frame and overlay


class FrameHub:
    """A short ring of published frames: the stream takes the newest, the page fetches a frame by its number so the
    text it shows is always the shown frame's."""

    def __init__(self, keep: int = 6, served: int = 8) -> None:
        self.cond = threading.Condition()
        self.ring: deque[Published] = deque(maxlen=keep)
        # Frames a page was given, kept a little longer: it asks for their record and snapshot next, and at an
        # unpaced rate the ring has moved on by then.
        self.served: OrderedDict[int, Published] = OrderedDict()
        self.served_keep = served
        self.seq = 0
        self.closed = False
        self.streams = 0  # long-lived viewers (MJPEG, events), capped by [http] max_clients

    def publish(self, jpeg: bytes, record: dict[str, Any], result: Result | None = None) -> Published:
        with self.cond:
            self.seq += 1
            item = Published(self.seq, jpeg, {**record, "seq": self.seq}, result)
            self.ring.append(item)
            self.cond.notify_all()
            return item

    @property
    def newest(self) -> Published | None:
        with self.cond:
            return self.ring[-1] if self.ring else None

    def get(self, seq: int) -> Published | None:
        with self.cond:
            return next((item for item in self.ring if item.seq == seq), None) or self.served.get(seq)

    def serve(self, item: Published) -> Published:
        """Keep item among the last frames handed to a page (so its record and snapshot stay reachable)."""
        with self.cond:
            self.served[item.seq] = item
            self.served.move_to_end(item.seq)
            while len(self.served) > self.served_keep:
                self.served.popitem(last=False)
            return item

    def wait_newer(self, seq: int, timeout: float) -> Published | None:
        """The newest frame once it is newer than seq, or None on timeout or close."""
        with self.cond:
            self.cond.wait_for(lambda: self.seq != seq or self.closed, timeout)
            if self.closed or self.seq == seq or not self.ring:
                return None
            return self.ring[-1]

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def join_stream(self, cap: int) -> bool:
        with self.cond:
            if self.streams >= cap:
                return False
            self.streams += 1
            return True

    def leave_stream(self) -> None:
        with self.cond:
            self.streams -= 1
