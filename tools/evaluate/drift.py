"""python -m tools.evaluate.drift [--model M] [--images DIR]: the drift monitor on generated scenarios.

Learns a baseline from normal frames, then runs the monitor on each scenario (normal frames, then one change) and on a
long normal sequence. Prints a Markdown table: detection delay in frames after the change, the alert's kind and cause,
false alarms before the change, and false alarms per 10,000 normal frames.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from edge.explain.drift_baseline import Baseline, BaselineBuilder
from edge.explain.drift_monitor import DriftMonitor, DriftSettings
from edge.explain.explainer import Explainer
from tools.data.drift_scenarios import EXPLANATION_KINDS, KINDS, U8, load_images, scenario

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Outcome:
    kind: str
    frames: int
    delay: int | None  # frames from the change to the first alert (None: no alert after the change)
    alert_kind: str
    cause: str  # the cause named last while in alert
    false_alarms: int  # alerts raised before the change
    input: str  # input drift seen at the end

    @property
    def passed(self) -> bool:
        if self.false_alarms:
            return False
        if self.kind in EXPLANATION_KINDS:
            return self.delay is not None and self.delay <= 300
        if self.kind == "lighting":
            return self.alert_kind != "explanation"
        return self.kind != "normal" or self.delay is None


def learn(explainer: Explainer, images: list[U8], frames: int, seed: int) -> Baseline:
    h, w, _ = explainer.manifest.feature_shape
    builder = BaselineBuilder(explainer.manifest.sha256, tuple(explainer.class_names), (h, w))
    for frame in scenario(images, "normal", frames, 0, seed):
        e = explainer.explain(frame)
        builder.add(e.class_index, float(e.probabilities[e.class_index]), e.cam, frame)
    return builder.build()


def run(explainer: Explainer, baseline: Baseline, images: list[U8], kind: str, normal: int, after: int,
        seed: int, settings: DriftSettings | None = None) -> Outcome:
    """One scenario through a fresh monitor."""
    monitor = DriftMonitor(baseline, settings)
    delay, alert_kind, cause, false_alarms, status = None, "", "", 0, monitor.status
    for i, frame in enumerate(scenario(images, kind, normal, after, seed)):
        e = explainer.explain(frame)
        status = monitor.update(e.class_index, e.cam, frame)
        if status.event == "alert":
            if i < normal or kind == "normal":
                false_alarms += 1
            elif delay is None:
                delay, alert_kind = i - normal, status.kind
        if status.state == "alert" and i >= normal:
            cause = status.cause  # the latest: evidence for a cause (a common shift) grows after the alert
    return Outcome(kind, normal + after, delay, alert_kind, cause, false_alarms, status.input)


def table(outcomes: list[Outcome]) -> str:
    rows = ["| scenario | frames | detection delay (frames) | alert | cause | input drift | false alarms "
            "| per 10,000 normal | goal met |", "|---|---|---|---|---|---|---|---|---|"]
    for o in outcomes:
        per = f"{1e4 * o.false_alarms / o.frames:.2f}" if o.kind == "normal" else "-"
        rows.append(f"| {o.kind} | {o.frames} | {'-' if o.delay is None else o.delay} | {o.alert_kind or '-'} "
                    f"| {o.cause or '-'} | {o.input or '-'} | {o.false_alarms} | {per} | "
                    f"{'yes' if o.passed else 'NO'} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.evaluate.drift", description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=REPO / "models" / "fruit")
    parser.add_argument("--images", type=Path, default=REPO / "samples")
    parser.add_argument("--baseline-frames", type=int, default=1000)
    parser.add_argument("--normal", type=int, default=400, help="normal frames before each change")
    parser.add_argument("--after", type=int, default=600, help="frames after each change")
    parser.add_argument("--long", type=int, default=20000, help="frames of the false-alarm run (0: skip)")
    parser.add_argument("--kinds", nargs="+", default=[k for k in KINDS if k != "normal"], choices=KINDS)
    parser.add_argument("--json", type=Path, help="also write the outcomes here")
    args = parser.parse_args(argv)
    explainer = Explainer.load(args.model)
    images = load_images(args.images)
    baseline = learn(explainer, images, args.baseline_frames, seed=1)
    outcomes = [run(explainer, baseline, images, kind, args.normal, args.after, seed=2 + i)
                for i, kind in enumerate(args.kinds)]
    if args.long:
        outcomes.append(run(explainer, baseline, images, "normal", args.long, 0, seed=99))
    print(table(outcomes))
    if args.json:
        args.json.write_text(json.dumps([asdict(o) | {"passed": o.passed} for o in outcomes], indent=2))
    return 0 if all(o.passed for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
