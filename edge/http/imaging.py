"""Image work for requests (the snapshot's JPEGs, the mean heatmaps' PNGs) on one long-lived thread.

Every connection gets a fresh thread, and OpenCV keeps per-thread state that such a thread leaves behind when it ends:
encoding in the connection threads grew the process by about 1 KB per request, never returned. One worker thread
does all of it instead; connection threads only wait for its bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TypeVar

T = TypeVar("T")


class ImageWorkError(Exception):
    """The worker did not answer in time (a backlog of requests); the request is answered 503."""


class ImageWorker:
    """One thread, started once, that runs the image functions requests submit."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="http-images")

    def run(self, work: Callable[[], T], timeout_s: float) -> T:
        """work()'s result, computed on the worker thread; ImageWorkError after timeout_s."""
        future = self._pool.submit(work)
        try:
            return future.result(timeout_s)
        except FutureTimeout as e:
            future.cancel()
            raise ImageWorkError(f"image work took over {timeout_s:.0f} s") from e

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
