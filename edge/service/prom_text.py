"""Prometheus' text exposition format (version 0.0.4), written by hand: counters, gauges, histograms and info metrics.

Escaping follows the format's specification (prometheus.io/docs/instrumenting/exposition_formats): in HELP text a
backslash and a line feed are escaped; in label values also the double quote. Values are Go-style floats (NaN, +Inf,
-Inf). tests/test_metrics.py parses the output with the official client's parser (prometheus_client.parser).
The device does not need prometheus_client itself: the service serves its own counters from its own HTTP server, so a
registry and a WSGI app would add a package without saving any code here.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
Labels = Mapping[str, str]


def escape_help(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n")


def escape_label_value(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{escape_label_value(str(v))}"' for k, v in labels.items()) + "}"


@dataclass
class Family:
    """One metric: its name, type (counter, gauge, histogram), help and samples (name suffix, labels, value)."""

    name: str
    type: str
    help: str
    samples: list[tuple[str, dict[str, str], float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"not a Prometheus metric name: {self.name!r}")
        if self.type not in ("counter", "gauge", "histogram", "untyped"):
            raise ValueError(f"not a Prometheus metric type: {self.type!r}")

    def add(self, value: float, labels: Labels | None = None, suffix: str = "") -> Family:
        for name in labels or {}:
            if not _LABEL.fullmatch(name) or name.startswith("__"):
                raise ValueError(f"not a Prometheus label name: {name!r}")
        self.samples.append((suffix, dict(labels or {}), float(value)))
        return self

    def text(self) -> str:
        lines = [f"# HELP {self.name} {escape_help(self.help)}", f"# TYPE {self.name} {self.type}"]
        lines += [f"{self.name}{suffix}{_labels(labels)} {format_value(value)}"
                  for suffix, labels, value in self.samples]
        return "\n".join(lines) + "\n"


def counter(name: str, help_: str, value: float | None = None, labels: Labels | None = None) -> Family:
    """A counter named <name>_total, in its TYPE line too (as the official client writes the 0.0.4 format: its
    parser pairs the samples with the TYPE line only then)."""
    family = Family(f"{name}_total", "counter", help_)
    return family if value is None else family.add(value, labels)


def gauge(name: str, help_: str, value: float | None = None, labels: Labels | None = None) -> Family:
    family = Family(name, "gauge", help_)
    return family if value is None else family.add(value, labels)


def info(name: str, help_: str, labels: Labels) -> Family:
    """An info metric the way the 0.0.4 format carries one: a gauge named <name>_info, 1, with the facts as labels."""
    return gauge(f"{name}_info", help_, 1, labels)


class Histogram:
    """Observations counted into cumulative buckets (upper bounds, ascending) with their sum, per label set."""

    def __init__(self, buckets: Sequence[float]) -> None:
        if list(buckets) != sorted(buckets) or not buckets:
            raise ValueError("histogram buckets must be ascending")
        self.bounds = [*buckets, math.inf]
        self.series: dict[tuple[tuple[str, str], ...], tuple[list[int], list[float]]] = {}  # labels -> counts, [sum]

    def observe(self, value: float, labels: Labels | None = None) -> None:
        counts, total = self.series.setdefault(tuple(sorted((labels or {}).items())),
                                               ([0] * len(self.bounds), [0.0]))
        counts[bisect_left(self.bounds, value)] += 1
        total[0] += value

    def family(self, name: str, help_: str) -> Family:
        family = Family(name, "histogram", help_)
        for key, (counts, total) in sorted(self.series.items()):
            labels = dict(key)
            running = 0
            for bound, count in zip(self.bounds, counts, strict=True):
                running += count
                family.add(running, {**labels, "le": format_value(bound)}, "_bucket")
            family.add(total[0], labels, "_sum")
            family.add(running, labels, "_count")
        return family


def render(families: Iterable[Family]) -> str:
    """The exposition text of families, each name once (a repeated name is a programming error)."""
    seen: set[str] = set()
    parts = []
    for family in families:
        if family.name in seen:
            raise ValueError(f"metric {family.name} given twice")
        seen.add(family.name)
        parts.append(family.text())
    return "".join(parts)
