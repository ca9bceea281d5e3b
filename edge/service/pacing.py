"""Which frames the loop explains ([trigger] and the heat back-off of [loop] max_temp_c), what a frame left
unexplained shows (the live frame under the last explanation, with its age), and the figures both give to
/metrics and the MQTT stats.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from edge.explain.render import draw_text
from edge.service.metrics import ServiceMetrics
from edge.service.thermal import Heat, HeatGovernor, ThermalReader
from edge.service.trigger import Trigger, TriggerConfig


class Pacing:
    """Decides per frame whether to explain it, and counts what became of each frame."""

    def __init__(self, trigger: TriggerConfig | None = None, *, governor: HeatGovernor | None = None,
                 thermal: ThermalReader | None = None, metrics: ServiceMetrics | None = None) -> None:
        self.trigger = Trigger(trigger or TriggerConfig())
        self.governor = governor or HeatGovernor(0.0)
        self.thermal = thermal
        self.metrics = metrics
        self.heat = Heat()
        self.min_gap_s = 0.0

    def decide(self, image: NDArray[np.uint8], now: float) -> str | None:
        """Why to explain this (H, W, 3) uint8 RGB model image at monotonic time now, or None to show it unexplained."""
        if self.thermal is not None:
            self.heat = self.thermal.read()  # cached: a sysfs read (and vcgencmd) every few seconds, not per frame
            self.min_gap_s = self.governor.min_gap_s(self.heat.temp_c)
        reason = self.trigger.decide(image, now, min_gap_s=self.min_gap_s)
        if self.metrics is not None:
            self.metrics.set_heat(self.heat, self.min_gap_s)
            self.metrics.count("captured")
            if reason is None:
                self.metrics.count("skipped")
        return reason

    def explained(self, timings_ms: Mapping[str, float], label: str, confidence: float, dropped: int) -> None:
        if self.metrics is not None:
            self.metrics.explained(timings_ms, label, confidence)
            self.metrics.dropped_total(dropped)

    def age_s(self, now: float) -> float | None:
        last = self.trigger.last_explained
        return None if last is None else now - last

    def stats(self, now: float) -> dict[str, Any]:
        """For the MQTT stats message and the dashboard's health: heat, the back-off and the trigger's figures."""
        age = self.age_s(now)
        return {**self.heat.as_dict(), "explain_min_gap_s": self.min_gap_s, "trigger": self.trigger.config.mode,
                "frames_skipped": self.trigger.skipped,
                "last_explanation_age_s": None if age is None else round(age, 1)}


def draw_age(overlay: NDArray[np.uint8], age_s: float) -> NDArray[np.uint8]:
    """A copy of the (H, W, 3) uint8 overlay with how old its explanation is, bottom left."""
    text = f"explained {age_s:.0f} s ago" if age_s < 120 else f"explained {age_s / 60:.0f} min ago"
    scale = max(0.4, min(overlay.shape[:2]) / 480.0) * 0.6
    return draw_text(overlay, text, (0, max(0, overlay.shape[0] - round(40 * scale))), scale)
