"""The service's figures for Prometheus (`/metrics`): what the loop counts as it goes, plus gauges read at scrape time
(the disk log, the MQTT outbox, the CPU's temperature and throttling) from the parts that own them.

The loop's thread writes, the HTTP server's threads read: one lock around both. Names follow Prometheus' conventions
(base units: seconds and bytes; counters end in _total).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping

from edge.service.prom_text import Family, Histogram, counter, gauge, info, render
from edge.service.thermal import THROTTLE_FLAGS, Heat

PREFIX = "edge_explainer"
STAGE_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)  # a Pi 4 explain: ~0.1 s
CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)
Collector = Callable[[], Iterable[Family]]  # more families, computed at scrape time


class ServiceMetrics:
    """Counts frames, stage latencies, predictions and confidence; renders everything in the text format."""

    def __init__(self, *, class_names: Iterable[str], info_labels: Mapping[str, str],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self.info_labels = dict(info_labels)
        self.frames = {"captured": 0, "explained": 0, "skipped": 0, "dropped": 0, "bad": 0}
        self.predictions = dict.fromkeys(class_names, 0)
        self.stages = Histogram(STAGE_BUCKETS_S)
        self.confidence = Histogram(CONFIDENCE_BUCKETS)
        self.last_confidence = float("nan")
        self.last_explained: float | None = None  # clock time
        self.min_gap_s = 0.0  # the heat back-off in force
        self.heat = Heat()
        self._collectors: list[Collector] = []

    def add_collector(self, collector: Collector) -> None:
        self._collectors.append(collector)

    def count(self, what: str, n: int = 1) -> None:
        """what: captured, skipped or bad (explained and dropped are set by explained() and dropped_total())."""
        with self._lock:
            self.frames[what] += n

    def dropped_total(self, total: int) -> None:
        with self._lock:
            self.frames["dropped"] = total

    def explained(self, timings_ms: Mapping[str, float], label: str, confidence: float) -> None:
        with self._lock:
            self.frames["explained"] += 1
            for stage, ms in timings_ms.items():
                self.stages.observe(ms / 1e3, {"stage": stage})
            self.predictions[label] = self.predictions.get(label, 0) + 1
            self.confidence.observe(confidence)
            self.last_confidence = confidence
            self.last_explained = self._clock()

    def text(self) -> str:
        with self._lock:
            families = self._own()
        for collector in self._collectors:  # outside the lock: collectors read other parts' state
            families.extend(collector())
        return render(families)

    def _own(self) -> list[Family]:
        p = PREFIX
        frames = counter(f"{p}_frames", "Frames by what became of them: captured, explained, skipped (the trigger "
                                        "said no), dropped (replaced before the loop took them), bad (refused)")
        for what, n in self.frames.items():
            frames.add(n, {"state": what})
        predictions = counter(f"{p}_predictions", "Explained frames by predicted (top-1) class")
        for label, n in self.predictions.items():
            predictions.add(n, {"class": label})
        age = float("nan") if self.last_explained is None else self._clock() - self.last_explained
        return [
            frames, predictions,
            self.stages.family(f"{p}_stage_seconds", "Time per frame in each stage of the loop"),
            self.confidence.family(f"{p}_confidence", "Top-1 probability of explained frames"),
            gauge(f"{p}_last_confidence", "Top-1 probability of the last explained frame", self.last_confidence),
            gauge(f"{p}_last_explanation_age_seconds", "Seconds since the last explained frame", age),
            gauge(f"{p}_explain_min_gap_seconds", "Least time between explanations now (the heat back-off; 0 = none)",
                  self.min_gap_s),
            *heat_families(self.heat),
            info(f"{p}_model", "The model bundle and runtime", self.info_labels),
        ]

    def set_heat(self, heat: Heat, min_gap_s: float) -> None:
        with self._lock:
            self.heat, self.min_gap_s = heat, min_gap_s


def heat_families(heat: Heat) -> list[Family]:
    """CPU temperature and throttling gauges; absent (not NaN) on machines that have neither."""
    families = []
    if heat.temp_c is not None:
        families.append(gauge(f"{PREFIX}_cpu_temperature_celsius", "SoC temperature", heat.temp_c))
    if heat.throttled is not None:
        now, since_boot = set(heat.flags()), set(heat.flags(since_boot=True))
        throttled = gauge(f"{PREFIX}_throttled", "vcgencmd get_throttled: 1 while the condition holds")
        occurred = gauge(f"{PREFIX}_throttled_since_boot", "vcgencmd get_throttled: 1 if it happened since boot")
        for name in THROTTLE_FLAGS.values():
            throttled.add(name in now, {"condition": name})
            occurred.add(name in since_boot, {"condition": name})
        families += [throttled, occurred]
    return families


def disk_log_families(files: int, size_bytes: int) -> list[Family]:
    return [gauge(f"{PREFIX}_disk_log_files", "Files the disk log keeps (images and JSONLs)", files),
            gauge(f"{PREFIX}_disk_log_bytes", "Bytes the disk log keeps", size_bytes)]


def mqtt_families(dropped: int, published: int) -> list[Family]:
    return [counter(f"{PREFIX}_mqtt_outbox_dropped", "MQTT messages dropped from a full outbox", dropped),
            counter(f"{PREFIX}_mqtt_published", "MQTT messages handed to the client", published)]
