"""Settings the browser view's controls change while the loop runs: CAM method, target class, overlay alpha and
threshold (read by the loop each frame), and whether the view shows the overlay and is paused (read by the view)."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Settings:
    """One consistent set; a change makes a new one, so a reader never sees half an update."""

    method: str
    target: str | None  # a class name, or None for the top-1 class
    alpha: float
    threshold: float
    overlay: bool = True  # False: the view shows the plain frame
    paused: bool = False  # True: the view keeps showing the frame it had

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class LiveSettings:
    """The current Settings behind a lock; update() checks every value and names the bad one."""

    def __init__(self, initial: Settings, methods: Sequence[str], class_names: Sequence[str]) -> None:
        self.methods = tuple(methods)
        self.class_names = tuple(class_names)
        self._lock = threading.Lock()
        self._current = initial

    def get(self) -> Settings:
        with self._lock:
            return self._current

    def update(self, changes: dict[str, Any]) -> Settings:
        """Apply the changes (a JSON object's keys) and return the new settings; ValueError names a bad key."""
        checked = {key: self._check(key, value) for key, value in changes.items()}
        with self._lock:
            self._current = dataclasses.replace(self._current, **checked)
            return self._current

    def _check(self, key: str, value: Any) -> Any:
        if key == "method" and value in self.methods:
            return value
        if key == "target" and (value is None or value in self.class_names):
            return value
        if key in ("alpha", "threshold") and isinstance(value, int | float) and not isinstance(value, bool) \
                and 0.0 <= value <= 1.0:
            return float(value)
        if key in ("overlay", "paused") and isinstance(value, bool):
            return value
        if key not in {f.name for f in dataclasses.fields(Settings)}:
            raise ValueError(f"unknown setting {key!r}")
        raise ValueError(f"bad value for {key}: {value!r}")
