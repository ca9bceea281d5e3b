"""The explanation-guidance ablation: train each arm with the same budget and seed, export it, evaluate it on the
evaluation-only backgrounds, and write one table.

    python -m tools.ablation DATA_DIR [--work build/ablation] [--epochs 6] [--samples-per-epoch 6000] [--seed 0]
                             [--valid-samples N] [--batch-size N] [--per-pair 20]
                             [--arm NAME=ARCH,GUIDE,WEIGHT ...] [--out docs/ablation]

Each arm runs `tools.train`, `tools.export` and `tools.evaluate --composite` as subprocesses (one TensorFlow at a time);
an arm whose evaluation exists is not run again, so an interrupted ablation resumes. Writes OUT.json and OUT.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from tools.common.cli_support import add_common, one_line_errors, setup_logging

_LOGGER = logging.getLogger("tools.ablation")
CLASSES = "Apfel,Orange,Tomate"


@dataclass(frozen=True)
class Arm:
    name: str
    arch: str
    guide: str
    weight: float

    @classmethod
    def parse(cls, spec: str) -> Arm:
        try:
            name, rest = spec.split("=", 1)
            arch, guide, weight = rest.split(",")
            return cls(name, arch, guide, float(weight))
        except ValueError as e:
            raise ValueError(f"--arm {spec!r}: expected NAME=ARCH,GUIDE,WEIGHT, e.g. gap-rrr=fruitcnn-gap,rrr,1") from e


# The GAP trunk with every approach; the Flatten trunk without and with the mask penalty. Weights put each term at the
# cross-entropy's order of magnitude at the start of training (Ross et al.'s rule for RRR), measured on a first batch:
# masks ~0.33, rrr ~1.0, gain ~0.37, consistency ~0.06 (hence 10).
DEFAULT_ARMS = (
    Arm("gap-none", "fruitcnn-gap", "none", 0.0),
    Arm("gap-masks", "fruitcnn-gap", "masks", 1.0),
    Arm("gap-rrr", "fruitcnn-gap", "rrr", 1.0),
    Arm("gap-gain", "fruitcnn-gap", "gain", 1.0),
    Arm("gap-consistency", "fruitcnn-gap", "consistency", 10.0),
    Arm("flatten-none", "fruitcnn", "none", 0.0),
    Arm("flatten-masks", "fruitcnn", "masks", 1.0),
)


def _run(args: list[str], log: Path) -> None:
    with log.open("a") as f:
        proc = subprocess.run([sys.executable, *args], stdout=f, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        raise OSError(f"{' '.join(args[:3])} failed (exit {proc.returncode}); see {log}")


@dataclass(frozen=True)
class Budget:
    """What every arm gets alike."""

    epochs: int
    samples_per_epoch: int
    seed: int
    valid_samples: int | None = None  # None: tools.train's default
    batch_size: int | None = None
    per_pair: int = 20  # tools.evaluate's two-fruit frames per ordered class pair

    def train_args(self) -> list[str]:
        args = ["--epochs", str(self.epochs), "--samples-per-epoch", str(self.samples_per_epoch), "--seed",
                str(self.seed)]
        if self.valid_samples is not None:
            args += ["--valid-samples", str(self.valid_samples)]
        if self.batch_size is not None:
            args += ["--batch-size", str(self.batch_size)]
        return args


def run_arm(arm: Arm, data: Path, work: Path, budget: Budget) -> dict[str, Any]:
    where = work / arm.name
    report = where / "eval" / "evaluation.json"
    if not report.exists():
        where.mkdir(parents=True, exist_ok=True)
        log = where / "log.txt"
        t0 = time.monotonic()
        _run(["-m", "tools.train", str(data), "--out", str(where / "model.keras"), "--arch", arm.arch, "--guide",
              arm.guide, "--guide-weight", str(arm.weight), *budget.train_args()], log)
        train_s = time.monotonic() - t0
        _run(["-m", "tools.export", str(where / "model.keras"), "--out", str(where / "bundle"), "--classes", CLASSES,
              "--preprocess", "unit"], log)
        _run(["-m", "tools.evaluate", str(where / "bundle"), str(data), "--composite", "--per-pair",
              str(budget.per_pair), "--out", str(where / "eval")], log)
        (where / "train_seconds.txt").write_text(f"{train_s:.0f}\n")
    evaluation = json.loads(report.read_text())
    summary = json.loads((where / "model.summary.json").read_text())
    seconds = float((where / "train_seconds.txt").read_text()) if (where / "train_seconds.txt").exists() else None
    return {
        "arm": arm.name, "arch": arm.arch, "guide": arm.guide, "weight": arm.weight, "train_seconds": seconds,
        "best_epoch": summary.get("best_epoch"),
        "plain_accuracy": evaluation["plain"]["accuracy"],
        "composite_accuracy": evaluation["composite"]["accuracy"],
        "energy_in_mask_ratio": evaluation["composite"]["energy_in_mask_ratio"],
        "pointing_game": evaluation["composite"]["pointing_game"],
        "two_fruit_discrimination": evaluation["two_fruit"]["discrimination"],
    }


def table(rows: list[dict[str, Any]], budget: Budget) -> str:
    head = ("| arm | trunk | guidance (weight) | plain acc. | composited acc. | energy-in-mask ratio | pointing game "
            "| two-fruit discrimination | training, min |")
    lines = [f"Every arm: seed {budget.seed}, {budget.epochs} epochs x {budget.samples_per_epoch} composited frames, "
             "the same evaluation frames "
             "(test split, evaluation-only backgrounds).", "", head, "| --- " * 9 + "|"]
    for r in rows:
        minutes = f"{r['train_seconds'] / 60:.0f}" if r["train_seconds"] else "?"
        guide = "none" if r["guide"] == "none" else f"{r['guide']} ({r['weight']:g})"
        lines.append(f"| {r['arm']} | {r['arch']} | {guide} | {r['plain_accuracy']:.1%} | "
                     f"{r['composite_accuracy']:.1%} | {r['energy_in_mask_ratio']:.2f} | {r['pointing_game']:.1%} | "
                     f"{r['two_fruit_discrimination']:.1%} | {minutes} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.ablation", description=__doc__.splitlines()[0])
    p.add_argument("data_dir", type=Path)
    p.add_argument("--work", type=Path, default=Path("build/ablation"))
    p.add_argument("--out", type=Path, default=Path("docs/ablation"), help="writes OUT.json and OUT.md")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--samples-per-epoch", type=int, default=6000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--valid-samples", type=int, default=None, help="tools.train's validation frames per epoch")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--per-pair", type=int, default=20, help="tools.evaluate's two-fruit frames per class pair")
    p.add_argument("--arm", action="append", default=[], help="NAME=ARCH,GUIDE,WEIGHT (repeat); default: 7 arms")
    add_common(p)
    args = p.parse_args(argv)
    setup_logging(args.debug)
    with one_line_errors(args.debug, ValueError) as status:
        arms = [Arm.parse(a) for a in args.arm] or list(DEFAULT_ARMS)
        budget = Budget(args.epochs, args.samples_per_epoch, args.seed, args.valid_samples, args.batch_size,
                        args.per_pair)
        rows = []
        for arm in tqdm(arms, desc="arms", unit="arm"):
            rows.append(run_arm(arm, args.data_dir, args.work, budget))
            _LOGGER.info("%s: %s", arm.name, {k: v for k, v in rows[-1].items() if isinstance(v, float)})
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".json").write_text(json.dumps(
            {"epochs": args.epochs, "samples_per_epoch": args.samples_per_epoch, "seed": args.seed, "arms": rows},
            indent=2) + "\n")
        text = table(rows, budget)
        args.out.with_suffix(".md").write_text(text)
        print(text)
    return status.code
