"""The drift monitor: running per-class mean maps, the label mix and frame statistics, compared with a Baseline.

Distances are divided by their thresholds, so 1.0 is the line: a drift is declared after `hold` frames above it and
cleared after `hold` frames below `clear` (hysteresis). A class's running mean map is a plain mean until the class has
been seen `window` times, exponentially weighted after that; a class seen fewer than `min_frames` times is not judged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from edge.explain.drift_baseline import Baseline
from edge.explain.drift_stats import centroid, frame_stats

Frame = tuple[int, NDArray[np.float32], "NDArray[np.uint8] | None"]  # class index, (h, w) CAM, the frame or None


@dataclass(frozen=True)
class DriftSettings:
    window: int = 50  # a class's running mean map weighs its last ~window frames of that class
    label_window: int = 300  # the label mix and frame statistics: frames of any class
    hold: int = 30  # frames a distance must stay above 1 (or below `clear`) to alert (or clear)
    clear: float = 0.7
    min_frames: int = 30  # a class seen fewer times since start (or in the baseline) waits instead of alarming
    corr: float = 0.2  # 1 - correlation of running and baseline mean maps
    shift: float = 1.3  # centroid shift, map cells
    outside: float = 0.1  # energy outside the baseline region, above the baseline's own share outside
    labels: float = 0.3  # total variation distance of the label mix
    frame_z: float = 6.0  # running brightness or sharpness, in standard deviations of that running mean
    input_explains: float = 2.0  # a map distance below this with input drift is called input drift
    frame_every: int = 8  # frame statistics on every Nth frame: they change slowly


@dataclass
class DriftStatus:
    state: str  # "learning", "ok" or "alert"
    distance: float  # the deciding distance over its threshold (>= 1: above)
    kind: str = ""  # what alerts: "explanation" or "labels"
    class_name: str = ""  # the class whose maps moved most
    cause: str = ""  # moved, blurred, dark, looking elsewhere, label mix changed
    input: str = ""  # input drift seen in the frame statistics alone (e.g. "dark"), even without an alert
    event: str = ""  # "alert" or "clear" on the frame the state changed

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"state": self.state, "distance": round(self.distance, 3)}
        out.update({k: v for k, v in (("kind", self.kind), ("class", self.class_name), ("cause", self.cause),
                                      ("input", self.input), ("event", self.event)) if v})
        return out


@dataclass(frozen=True)
class DriftMaps:
    """Per class c of C: the baseline's mean map and the running one, as the dashboard shows them side by side."""

    class_names: tuple[str, ...]
    baseline: NDArray[np.float64]  # (C, h, w) float64, each summing to 1
    current: NDArray[np.float64]  # (C, h, w) float64, each summing to 1 (the baseline's until the class is seen)
    baseline_frames: list[int]  # frames of each class in the baseline
    frames: list[int]  # frames of each class since the monitor started
    distances: list[float]  # each class's latest map distance over its thresholds (0 until judged)


class _Latch:
    """Above 1 for hold frames: on; below clear for hold frames: off."""

    def __init__(self, settings: DriftSettings) -> None:
        self.settings, self.on, self.run = settings, False, 0

    def update(self, distance: float, frames: int = 1) -> bool:
        s = self.settings
        beyond = distance < s.clear if self.on else distance >= 1.0
        self.run = self.run + frames if beyond else 0
        if self.run >= s.hold:
            self.on, self.run = not self.on, 0
        return self.on


class DriftMonitor:
    def __init__(self, baseline: Baseline, settings: DriftSettings | None = None) -> None:
        self.baseline, self.settings = baseline, settings or DriftSettings()
        self.maps = baseline.mean_maps.copy()  # (C, h, w) float64 running means
        self.seen = [0] * len(baseline.class_names)  # frames of each class since the start
        self.labels = baseline.frequencies.copy()  # (C,) running label mix
        self.frame = baseline.frame_mean.copy()  # (2,) running brightness, sharpness
        # The running mean's own spread: a frame's spread times sqrt(a / (2 - a)) for weight a per sampled frame;
        # floors because a still scene has almost no spread.
        a = min(1.0, self.settings.frame_every / self.settings.label_window)
        self.frame_std = np.maximum(baseline.frame_std, [2.0, 0.05]) * np.sqrt(a / (2.0 - a))
        self.base_centroids = np.stack([centroid(m) for m in baseline.mean_maps])  # (C, 2)
        self.base_outside = 1.0 - baseline.stat_mean[:, 4]  # (C,)
        self.frames = 0
        self.judged: list[int] = []
        self.distances = np.zeros(len(baseline.class_names))  # (C,) each class's latest map distance
        self.shifts = np.zeros((len(baseline.class_names), 2))  # (C, 2) each class's latest centroid shift, cells
        self.input = ""
        self.frequencies = baseline.frequencies  # (C,)
        # Precomputed once, so that a class's three distances are one matrix-vector product and a dot: per class
        # the rows of (4, h*w): cell row, cell column, baseline region (0/1), baseline mean map minus its mean.
        c, (h, w) = len(baseline.class_names), baseline.grid
        rows, cols = (g.ravel().astype(np.float64) for g in np.indices((h, w)))  # (h*w,) each
        base = baseline.mean_maps.reshape(c, -1)
        centred = base - base.mean(axis=1, keepdims=True)  # (C, h*w)
        self._base_norm = np.sqrt((centred ** 2).sum(axis=1))  # (C,)
        regions = baseline.regions.reshape(c, -1).astype(np.float64)  # (C, h*w)
        self._proj = np.stack([np.broadcast_to(rows, base.shape), np.broadcast_to(cols, base.shape), regions,
                               centred], axis=1)  # (C, 4, h*w) float64
        self.latches = {"explanation": _Latch(self.settings), "labels": _Latch(self.settings)}
        self.status = DriftStatus("ok", 0.0)

    def snapshot(self) -> DriftMaps:
        """The maps now, copied; from another thread a copy may catch one class halfway through one frame's update."""
        b = self.baseline
        return DriftMaps(b.class_names, b.mean_maps, self.maps.copy(), b.counts.tolist(), list(self.seen),
                         self.distances.tolist())

    def class_distances(self, ks: list[int]) -> NDArray[np.float64]:
        """(len(ks),) float64: each class's map distance over its thresholds, the largest of correlation, centroid
        shift and outside energy; their centroid shifts go to self.shifts."""
        s, m = self.settings, self.maps.reshape(len(self.maps), -1)[ks]  # (J, h*w) distributions (each sums to 1)
        row, col, inside, cross = (self._proj[ks] @ m[:, :, None])[:, :, 0].T  # (4, J)
        shift = np.stack([row, col], axis=1) - self.base_centroids[ks]  # (J, 2) cells
        self.shifts[ks] = shift
        outside = 1.0 - inside - self.base_outside[ks]
        spread = (m * m).sum(axis=1) - 1.0 / m.shape[1]  # sum of (m - mean)^2
        den = np.sqrt(np.maximum(spread, 0.0)) * self._base_norm[ks]
        corr = np.divide(cross, den, out=np.zeros_like(cross), where=den > 0)
        return np.maximum.reduce([(1.0 - corr) / s.corr, np.hypot(shift[:, 0], shift[:, 1]) / s.shift,
                                  outside / s.outside])

    def update(self, class_index: int, cam: NDArray[np.float32], image: NDArray[np.uint8] | None) -> DriftStatus:
        return self.update_many([(class_index, cam, image)])

    def update_many(self, frames: Sequence[Frame]) -> DriftStatus:
        """Frames in order: the running maps, label mix and frame statistics come out as one update() each would
        leave them (to rounding); the distances are measured and the latches advanced once, after the last frame.
        Scalar weights in Python, then a fixed number of NumPy calls whatever the batch's size or classes."""
        s, n = self.settings, len(frames)
        if n == 0:
            return self.status
        classes = [f[0] for f in frames]
        cams = np.stack([f[1] for f in frames]).reshape(n, -1)  # (n, h*w) float32, each >= 0 (normalised CAMs)
        totals = cams.sum(axis=1).tolist()
        weights = []  # each frame's weight in its class's running mean, from the class's count after it
        for k in classes:
            self.seen[k] += 1
            weights.append(max(1.0 / s.window, 1.0 / self.seen[k]))
        # frame i's share of its class's mean after the batch: a_i times what the class's later frames leave of it
        coefs, left, flat = [0.0] * n, dict[int, float](), dict[int, float]()  # left: class -> product of (1 - a)
        for i in range(n - 1, -1, -1):
            k, a = classes[i], weights[i]
            share = a * left.get(k, 1.0)
            if totals[i] > 0:
                coefs[i] = share / totals[i]
            else:  # an all-zero map counts as a uniform one
                flat[k] = flat.get(k, 0.0) + share
            left[k] = left.get(k, 1.0) * (1.0 - a)
        ks = list(left)
        row_of = {k: j for j, k in enumerate(ks)}
        mix = np.zeros((len(ks), n))  # (J, n): the batch's frames into each class seen in it
        mix[[row_of[k] for k in classes], np.arange(n)] = coefs
        maps = self.maps.reshape(len(self.maps), -1)  # (C, h*w) view: the running means updated in place
        maps[ks] = maps[ks] * np.array([left[k] for k in ks])[:, None] + mix @ cams
        for k, uniform in flat.items():
            maps[k] += uniform / maps.shape[1]
        b = 1.0 / s.label_window
        self.labels *= (1.0 - b) ** n
        self.labels += np.bincount(classes, b * (1.0 - b) ** np.arange(n - 1, -1, -1), len(self.labels))
        for i, (_, _, image) in enumerate(frames, self.frames + 1):
            if image is not None and i % s.frame_every == 1 % s.frame_every:
                self.frame += min(1.0, b * s.frame_every) * (frame_stats(image) - self.frame)
                self.input = self._input()
        self.frames += n
        judged = [k for k in ks if self.seen[k] >= s.min_frames and self.baseline.counts[k] >= s.min_frames]
        self.judged += [k for k in judged if k not in self.judged]
        if judged:  # the other classes' maps did not change
            self.distances[judged] = self.class_distances(judged)
        worst = self.judged[int(np.argmax(self.distances[self.judged]))] if self.judged else -1
        explanation = float(self.distances[worst]) if self.judged else 0.0
        labels = 0.5 * float(np.abs(self.labels - self.frequencies).sum()) / s.labels
        return self._decide(explanation, labels, worst, n)

    def _input(self) -> str:
        z = (self.frame - self.baseline.frame_mean) / self.frame_std  # (2,): brightness, sharpness
        if abs(z[1]) >= self.settings.frame_z and z[1] < 0:
            return "blurred"
        if abs(z[0]) >= self.settings.frame_z:
            return "dark" if z[0] < 0 else "bright"
        return ""

    def _decide(self, explanation: float, labels: float, worst: int, frames: int) -> DriftStatus:
        before = self.status.state
        explained = self.latches["explanation"].update(explanation, frames)
        labelled = self.latches["labels"].update(labels, frames)
        kind = "explanation" if explained else "labels" if labelled else ""
        distance = max(explanation, labels) if not kind else explanation if kind == "explanation" else labels
        status = DriftStatus("alert" if kind else "ok", distance, input=self.input)
        if kind == "explanation" and status.input and explanation < self.settings.input_explains:
            kind = "input"  # the frames changed and the maps only moderately: what the camera sees, not its reasons
        if kind:
            status.kind = kind
            status.class_name = self.baseline.class_names[worst] if worst >= 0 and kind != "labels" else ""
            status.cause = self._cause(kind, worst, status.input)
        if status.state != before:
            status.event = "alert" if kind else "clear"
        self.status = status
        return status

    def _cause(self, kind: str, worst: int, frame_cause: str) -> str:
        if kind == "labels":
            return "label mix changed"
        if kind == "input":
            return frame_cause
        shifts = self.shifts[self.judged]  # (J, 2) cells: a judged class's map only changes when it is measured
        common = shifts.sum(axis=0) / max(1, len(shifts))  # (2,)
        size = float(np.hypot(*common))
        # moved: every judged class's map shifted the same way (cosine >= 0.7 with their mean shift)
        if len(shifts) >= 2 and size >= 0.75 and bool(
                (shifts @ common >= 0.7 * size * np.hypot(shifts[:, 0], shifts[:, 1])).all()):
            return f"moved ({common[0]:+.1f}, {common[1]:+.1f}) cells"
        return frame_cause if frame_cause in ("blurred", "dark") else "looking elsewhere"
