"""The Pi's temperature and throttling state, and the back-off that lowers the explain rate while it runs hot.

The temperature is /sys/class/thermal/thermal_zone0/temp (millidegrees), the throttling state the bits of
`vcgencmd get_throttled` (Raspberry Pi OS); either is None where the machine has no such thing (a PC, a container),
and nothing else is tried there.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

_LOGGER = logging.getLogger(__name__)

TEMP_PATH = "sys/class/thermal/thermal_zone0/temp"  # under the root (/ on a device, a fake tree in tests)
# vcgencmd get_throttled's bits (Raspberry Pi documentation, "vcgencmd"): now in the low bits, since boot from 16.
THROTTLE_FLAGS = {0: "under-voltage", 1: "frequency capped", 2: "throttled", 3: "soft temperature limit"}
SINCE_BOOT_SHIFT = 16


@dataclass(frozen=True)
class Heat:
    """One reading: the SoC temperature in Celsius and vcgencmd's throttled bits; None where not available."""

    temp_c: float | None = None
    throttled: int | None = None

    def flags(self, *, since_boot: bool = False) -> list[str]:
        """The names of the throttling conditions active now (or, since_boot, that occurred since boot)."""
        if self.throttled is None:
            return []
        bits = self.throttled >> SINCE_BOOT_SHIFT if since_boot else self.throttled
        return [name for bit, name in THROTTLE_FLAGS.items() if bits >> bit & 1]

    def as_dict(self) -> dict[str, object]:
        """For MQTT stats and the dashboard: temperature, the raw bits as hex, and the names of those active now."""
        return {"cpu_temp_c": self.temp_c,
                "throttled": None if self.throttled is None else f"{self.throttled:#x}",
                "throttled_now": self.flags()}


def parse_throttled(text: str) -> int | None:
    """`throttled=0x50005` -> 0x50005; None for anything else."""
    key, _, value = text.strip().partition("=")
    if key != "throttled":
        return None
    try:
        return int(value, 16)
    except ValueError:
        return None


class ThermalReader:
    """Reads the temperature and throttling state at most once per every_s (vcgencmd is a process start)."""

    def __init__(self, root: str | Path = "/", *, vcgencmd: str | None = None, every_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.temp_path = Path(root) / TEMP_PATH
        self.vcgencmd = vcgencmd if vcgencmd is not None else shutil.which("vcgencmd")
        self.every_s = every_s
        self.clock = clock
        self._last: Heat = Heat()
        self._read_at: float | None = None

    def read(self) -> Heat:
        now = self.clock()
        if self._read_at is None or now - self._read_at >= self.every_s:
            self._read_at = now
            self._last = Heat(self._temperature(), self._throttled())
        return self._last

    def _temperature(self) -> float | None:
        try:
            return round(int(self.temp_path.read_text().strip()) / 1000.0, 1)
        except (OSError, ValueError):
            return None

    def _throttled(self) -> int | None:
        if not self.vcgencmd:
            return None
        try:
            proc = subprocess.run([self.vcgencmd, "get_throttled"], capture_output=True, text=True, timeout=2.0,
                                  check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            _LOGGER.warning("%s get_throttled failed (%s); not asking again", self.vcgencmd, e)
            self.vcgencmd = None
            return None
        return parse_throttled(proc.stdout) if proc.returncode == 0 else None


class HeatGovernor:
    """Above max_temp_c, explanations are kept hot_every_s apart; below max_temp_c - hysteresis_c the full rate
    returns. Each change is logged once. max_temp_c 0 turns it off."""

    def __init__(self, max_temp_c: float, *, hysteresis_c: float = 5.0, hot_every_s: float = 2.0) -> None:
        self.max_temp_c = max_temp_c
        self.hysteresis_c = hysteresis_c
        self.hot_every_s = hot_every_s
        self.hot = False
        self.changes = 0  # how often the rate was lowered or restored

    def min_gap_s(self, temp_c: float | None) -> float:
        """The least time between two explanations at this temperature (0 = no limit)."""
        if self.max_temp_c and temp_c is not None:
            if not self.hot and temp_c > self.max_temp_c:
                self.hot = True
                self.changes += 1
                _LOGGER.warning("CPU at %.1f C, above [loop] max_temp_c %.1f: explaining at most one frame every "
                                "%.1f s until it is below %.1f C", temp_c, self.max_temp_c, self.hot_every_s,
                                self.max_temp_c - self.hysteresis_c)
            elif self.hot and temp_c < self.max_temp_c - self.hysteresis_c:
                self.hot = False
                self.changes += 1
                _LOGGER.info("CPU at %.1f C, below %.1f C again: explaining at the full rate", temp_c,
                             self.max_temp_c - self.hysteresis_c)
        return self.hot_every_s if self.hot else 0.0
