"""Evaluate a bundle on the held-out split: is it right, and is it right for the right reasons?

    python -m tools.evaluate BUNDLE DATA_DIR [--composite] [--json] [--out DIR] [--reference FLOAT_BUNDLE]
    python -m tools.evaluate BUNDLE IMAGES --faithfulness [--methods M,...] [--json] [--out DIR]

Runs on the device's own code (edge.Explainer, no TensorFlow). Reports accuracy and the confusion matrix on the plain
white-background test images; with --composite also, on the same fruits pasted on backgrounds that training never used:
accuracy, the energy-in-mask ratio (share of heatmap energy inside the fruit / the fruit's share of the frame; 1.0 is
no better than a flat map), the pointing game (is the heatmap's maximum on the fruit?) and, on frames with two different
fruits side by side, class discrimination (does each class's heatmap peak on that class's fruit?). Writes
DIR/evaluation.json and a contact sheet of the worst cases, DIR/worst.png. With --reference (e.g. the float bundle
an int8 one was made from), also how closely BUNDLE follows it on the composited frames: top-1 agreement and heatmap
correlation.
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from tqdm import tqdm

from edge.explain.explainer import Explainer, Explanation
from tools.common.agreement import Agreement
from tools.common.cli_support import add_common, one_line_errors, setup_logging
from tools.common.contact_sheet import overlay_rgb, write_sheet
from tools.data import compositing
from tools.data.fruitset import DatasetError, FruitSet, load_split

_LOGGER = logging.getLogger("tools.evaluate")
U8 = NDArray[np.uint8]


@dataclass
class Localisation:
    ratio: float  # energy-in-mask share / mask share of the frame
    hit: bool  # the heatmap maximum lies inside the mask


def localise(cam: NDArray[np.float32], mask: NDArray[np.bool_]) -> Localisation:
    """Compare an (h, w) CAM, upsampled to the mask's (S, S) frame as the overlay shows it, with the object mask."""
    up = cv2.resize(cam.astype(np.float32), (mask.shape[1], mask.shape[0]), interpolation=cv2.INTER_LINEAR)
    total = float(up.sum())
    if total <= 0 or not mask.any():  # a flat-zero map points nowhere
        return Localisation(0.0, False)
    share = float(up[mask].sum()) / total
    peak = np.unravel_index(int(np.argmax(up)), up.shape)
    return Localisation(share / float(mask.mean()), bool(mask[peak]))


@dataclass
class Case:
    """One explained frame kept for the worst-case sheet."""

    frame: U8
    explanation: Explanation
    truth: str
    ratio: float
    hit: bool

    @property
    def badness(self) -> tuple[bool, bool, float]:
        return (self.explanation.label == self.truth, self.hit, self.ratio)


def plain(explainer: Explainer, data: FruitSet) -> dict[str, Any]:
    """Accuracy and confusion matrix (rows: truth, columns: prediction) on the images as they are."""
    c = len(data.class_names)
    confusion = np.zeros((c, c), int)
    for image, label in tqdm(zip(data.images, data.labels, strict=True), total=len(data), desc="plain", unit="img"):
        confusion[label, int(np.argmax(explainer.classify(image)))] += 1
    return {"images": len(data), "accuracy": float(np.trace(confusion) / max(1, confusion.sum())),
            "confusion": confusion.tolist()}


def composite(explainer: Explainer, data: FruitSet, per_image: int, seed: int,
              cases: list[Case], agreement: Agreement | None = None) -> dict[str, Any]:
    """One fruit per frame on evaluation backgrounds: accuracy, energy-in-mask ratio and pointing game (true class)."""
    rng = np.random.default_rng(seed)
    frames = compositing.frames(data, per_image * len(data.with_masks()), rng, "eval", compositing.EVAL_MIX)
    correct, ratios, hits = 0, [], []
    for x, y, masks in tqdm(zip(frames.x, frames.y, frames.masks, strict=True), total=len(frames.x),
                            desc="composited", unit="frame"):
        truth = int(np.argmax(y))
        if agreement is not None:
            agreement.add(x)
        e = explainer.explain(x, target=truth)
        predicted = int(np.argmax(e.probabilities))
        correct += predicted == truth
        loc = localise(e.cam, masks[truth])
        ratios.append(loc.ratio)
        hits.append(loc.hit)
        shown = explainer.explain(x) if predicted != truth else e  # the sheet shows what the device would show
        cases.append(Case(x, shown, data.class_names[truth], loc.ratio, loc.hit))
    n = len(frames.x)
    return {"frames": n, "accuracy": correct / max(1, n), "energy_in_mask_ratio": float(np.mean(ratios)),
            "energy_in_mask_ratio_median": float(np.median(ratios)), "pointing_game": float(np.mean(hits))}


def two_fruit(explainer: Explainer, data: FruitSet, per_pair: int, seed: int, cases: list[Case]) -> dict[str, Any]:
    """Two different fruits side by side: each class's heatmap must peak on its own fruit."""
    rng = np.random.default_rng(seed + 1)
    pool = data.with_masks()
    by_class = {c: [i for i in pool if data.labels[i] == c] for c in range(len(data.class_names))}
    hits, energy_wins, checks = 0, 0, 0
    pairs = [(a, b) for a in by_class for b in by_class if a != b and by_class[a] and by_class[b]]
    for a, b in tqdm(pairs, desc="two-fruit", unit="pair"):
        for _ in range(per_pair):
            first, second = (int(rng.choice(by_class[k])) for k in (a, b))
            frame, masks = compositing.pair(data, first, second, rng)
            for own, other, cls in ((0, 1, a), (1, 0, b)):
                e = explainer.explain(frame, target=cls)
                loc = localise(e.cam, masks[own])
                up = cv2.resize(e.cam, frame.shape[1::-1], interpolation=cv2.INTER_LINEAR)
                energy_wins += float(up[masks[own]].sum()) > float(up[masks[other]].sum())
                hits += loc.hit
                checks += 1
                cases.append(Case(frame, e, data.class_names[cls], loc.ratio, loc.hit))
    return {"checks": checks, "discrimination": hits / max(1, checks),
            "energy_on_own_fruit": energy_wins / max(1, checks)}


def worst_sheet(path: Path, cases: list[Case], count: int = 16) -> None:
    rows: list[list[tuple[U8, str]]] = []
    for case in sorted(cases, key=lambda c: c.badness)[:count]:
        e = case.explanation
        rows.append([(case.frame, f"truth {case.truth}"),
                     (overlay_rgb(case.frame, e.cam), f"{e.label} {e.probabilities.max():.2f} r={case.ratio:.2f}")])
    pairs = [rows[i] + rows[i + 1] if i + 1 < len(rows) else rows[i] for i in range(0, len(rows), 2)]
    write_sheet(path, pairs, title="worst cases: frame | heatmap of the shown class (r = energy-in-mask ratio)")


def evaluate(bundle: Path, data_dir: Path, composited: bool, out: Path, split: str = "test",
             limit: int | None = None, per_image: int = 2, per_pair: int = 20, seed: int = 1234,
             reference: Path | None = None) -> dict[str, Any]:
    explainer = Explainer.load(bundle)
    if reference is not None and not composited:
        raise DatasetError("--reference compares on the composited frames: add --composite")
    agreement = Agreement(Explainer.load(reference), explainer) if reference is not None else None
    root = data_dir / split if (data_dir / split).is_dir() else data_dir
    size = explainer.manifest.input_shape[0]
    data = load_split(root, explainer.class_names, size, limit)
    report: dict[str, Any] = {"bundle": str(bundle), "bundle_sha256": explainer.manifest.sha256, "data": str(root),
                              "class_names": explainer.class_names, "plain": plain(explainer, data)}
    cases: list[Case] = []
    if composited:
        if not data.with_masks():
            raise DatasetError(f"{root}: no image has a mask, so nothing can be composited")
        report["composite"] = composite(explainer, data, per_image, seed, cases, agreement)
        if agreement is not None:
            report["agreement"] = {"reference": str(reference), **agreement.summary()}
        report["two_fruit"] = two_fruit(explainer, data, per_pair, seed, cases)
        report["settings"] = {"per_image": per_image, "per_pair": per_pair, "seed": seed, "backgrounds": "eval"}
        worst_sheet(out / "worst.png", cases)
    out.mkdir(parents=True, exist_ok=True)
    (out / "evaluation.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def table(report: dict[str, Any]) -> str:
    lines = [f"plain accuracy          {report['plain']['accuracy']:.3f}  ({report['plain']['images']} images)",
             "confusion (rows truth, cols predicted): " + " ".join(report["class_names"])]
    lines += [f"  {name:<8} {row}" for name, row in zip(report["class_names"], report["plain"]["confusion"],
                                                         strict=True)]
    if "composite" in report:
        c, t = report["composite"], report["two_fruit"]
        lines += [f"composited accuracy     {c['accuracy']:.3f}  ({c['frames']} frames, unseen backgrounds)",
                  f"energy-in-mask ratio    {c['energy_in_mask_ratio']:.2f}  "
                  f"(median {c['energy_in_mask_ratio_median']:.2f})",
                  f"pointing game           {c['pointing_game']:.3f}",
                  f"two-fruit discrimination {t['discrimination']:.3f}  "
                  f"(energy on own fruit {t['energy_on_own_fruit']:.3f}, "
                  f"{t['checks']} checks)"]
    if "agreement" in report:
        a = report["agreement"]
        lines += [f"agreement with reference top-1 {a['top1_agreement']:.3f}, heatmap correlation "
                  f"{a['cam_correlation']:.3f} (min {a['cam_correlation_min']:.3f}; {a['frames']:.0f} frames, "
                  f"{a['reference']})"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.evaluate", description=__doc__.splitlines()[0])
    p.add_argument("bundle", type=Path)
    p.add_argument("data_dir", type=Path, help="dataset folder; its test/ split is used when present")
    p.add_argument("--composite", action="store_true", help="also composited frames, localisation and two-fruit frames")
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    p.add_argument("--out", type=Path, default=Path("out/evaluate"), help="where evaluation.json and worst.png go")
    p.add_argument("--split", default="test")
    p.add_argument("--limit", type=int, default=None, help="images per class (quick runs)")
    p.add_argument("--per-image", type=int, default=2, help="composited frames per test image")
    p.add_argument("--per-pair", type=int, default=20, help="two-fruit frames per ordered pair of classes")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--reference", type=Path, help="with --composite: a bundle to compare with (e.g. the float one)")
    p.add_argument("--faithfulness", action="store_true",
                   help="score every CAM method's faithfulness instead (docs/faithfulness.md); DATA_DIR may then be a "
                        "plain folder of images")
    p.add_argument("--score", choices=("probability", "logit"), default="probability",
                   help="with --faithfulness: the class score the perturbations move (default: probability)")
    p.add_argument("--methods", help="with --faithfulness: comma-separated CAM methods (default: all and 'random')")
    add_common(p)
    args = p.parse_args(argv)
    setup_logging(args.debug)
    if args.faithfulness:
        from tools.evaluate import faithfulness

        with one_line_errors(args.debug, DatasetError) as status:
            methods = args.methods.split(",") if args.methods else None
            report = faithfulness.evaluate_faithfulness(args.bundle, args.data_dir, args.out, methods, args.split,
                                                        args.limit, args.seed, args.score)
            print(json.dumps({k: report[k] for k in ("bundle", "ranking", "summary")}, indent=2) if args.json
                  else faithfulness.table(report))
        return status.code
    with one_line_errors(args.debug, DatasetError) as status:
        report = evaluate(args.bundle, args.data_dir, args.composite, args.out, args.split, args.limit,
                          args.per_image, args.per_pair, args.seed, args.reference)
        print(json.dumps(report, indent=2) if args.json else table(report))
    return status.code
