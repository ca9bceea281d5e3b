"""sd_notify over $NOTIFY_SOCKET with a plain datagram socket: READY=1, WATCHDOG=1, STATUS=, STOPPING=1.

Without NOTIFY_SOCKET (not started by systemd with Type=notify) every call does nothing.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping

_LOGGER = logging.getLogger(__name__)


class Notifier:
    """Talks to systemd's notify socket; watchdog() pings at most every half WatchdogSec."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        # An address starting with "@" is in the abstract namespace: a leading NUL byte on the wire.
        self._address = "\0" + address[1:] if address.startswith("@") else address
        self._socket: socket.socket | None = None
        if self._address:
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        watched = usec.isdigit() and (not pid or pid == str(os.getpid()))
        self.watchdog_interval = int(usec) / 2e6 if watched else 1.0  # seconds between pings
        self.ready_sent = False
        self._last_ping = 0.0

    @property
    def enabled(self) -> bool:
        return self._socket is not None

    def notify(self, message: str) -> bool:
        """Send one message; failures are logged, never raised (the service must not die of a missing socket)."""
        if self._socket is None:
            return False
        try:
            self._socket.sendto(message.encode(), self._address)
            return True
        except OSError as e:
            _LOGGER.warning("sd_notify %r to %s failed: %s", message, self._address.lstrip("\0"), e)
            return False

    def ready(self, status: str = "") -> None:
        """READY=1 once (the first explained frame)."""
        if not self.ready_sent:
            self.ready_sent = True
            self.notify("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def watchdog(self) -> None:
        """WATCHDOG=1, rate-limited; call it from the loop on every explained frame."""
        now = time.monotonic()
        if now - self._last_ping >= self.watchdog_interval:
            self._last_ping = now
            self.notify("WATCHDOG=1")

    def status(self, text: str) -> None:
        self.notify(f"STATUS={text}")

    def stopping(self) -> None:
        self.notify("STOPPING=1")

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
