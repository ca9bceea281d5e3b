"""Waiting for a source that is not there yet: a Pi camera that comes up late at boot, a webcam plugged in later.

A configuration error (SourceError) still ends the start with exit 2; an absent or busy device (SourceUnavailableError)
is retried with a doubling backoff, with one journal line when the wait starts, one per change of reason and one when
it ends, and the reason in systemd's STATUS= (READY=1 is sent when the wait starts: the service is up and doing what
it should, so TimeoutStartSec does not kill it; the watchdog is fed while it waits).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Protocol

from edge.sources.base import FrameSource, SourceUnavailableError

_LOGGER = logging.getLogger(__name__)

MAX_BACKOFF_S = 10.0  # below half the unit's WatchdogSec=30, so the watchdog ping never lapses while waiting


class Status(Protocol):
    """What the wait reports to (edge.service.systemd_notify.Notifier)."""

    def ready(self, status: str = "") -> None: ...

    def status(self, text: str) -> None: ...

    def watchdog(self) -> None: ...


def open_when_available(source: FrameSource, stop: threading.Event, notifier: Status, *,
                        first_backoff_s: float = 0.5, max_backoff_s: float = MAX_BACKOFF_S) -> bool:
    """Open source, waiting while it is unavailable; True once open, False if stop was set first.

    Any other error (SourceError, OSError) propagates at once: it is the configuration, not the device.
    """
    backoff = first_backoff_s
    started = time.monotonic()
    reason = ""
    attempts = 0
    while True:
        attempts += 1
        try:
            source.open()
        except SourceUnavailableError as e:
            if not reason:
                _LOGGER.warning("%s; waiting for it (retrying every %.1f-%.0f s)", e, first_backoff_s, max_backoff_s)
                notifier.ready(f"waiting for {source.name}: {e}")
            elif str(e) != reason:
                _LOGGER.warning("still waiting: %s", e)
            reason = str(e)
            notifier.status(f"waiting for {source.name} for {time.monotonic() - started:.0f} s: {reason}")
            notifier.watchdog()
            if stop.wait(backoff):
                _LOGGER.info("%s: stopped while waiting for it", source.name)
                return False
            backoff = min(backoff * 2, max_backoff_s)
            continue
        if reason:
            _LOGGER.info("%s: available after %.1f s (%d attempts)", source.name, time.monotonic() - started,
                         attempts)
            notifier.status(f"{source.name} available")
        return True
