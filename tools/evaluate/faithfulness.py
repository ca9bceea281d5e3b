"""python -m tools.evaluate BUNDLE IMAGES --faithfulness [--methods ...] [--out DIR] [--json]: which CAM method to
believe, for this model.

Scores every CAM method's map of each image's top class (and a random map, pytorch-grad-cam's RandomCAM, the floor
any method must beat) with edge.explain.faithfulness (confidence change / drop / increase, deletion and insertion AUC)
and ROAD (tools/evaluate/road.py). IMAGES is a plain folder of images or a folder-per-class dataset (its test/ split
when present). Writes DIR/faithfulness.json (summary, ranking, every image's scores) and DIR/faithfulness-curves.png
(the mean deletion and insertion curves per method).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from edge.errors import MethodError
from edge.explain.cam import METHODS
from edge.explain.explainer import Explainer
from edge.explain.faithfulness import BETTER, FaithfulnessScorer, anchor_map, random_cam_raw
from edge.explain.trunk_passes import TrunkPasses
from tools.data.fruitset import IMAGE_SUFFIXES, DatasetError
from tools.evaluate.road import road_scores

RANDOM = "random"
# The scores the overall ranking averages ranks over (confidence change is left out: its drop says the same).
RANKED = ("drop_in_confidence", "deletion_auc", "insertion_auc", "road_morf", "road_lerf")


def image_files(images: Path, split: str = "test") -> list[Path]:
    """The images of a plain folder, or of every class folder of a dataset (its `split` folder when present)."""
    root = images / split if (images / split).is_dir() else images
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder")
    files = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    files += sorted(p for d in sorted(root.iterdir()) if d.is_dir() for p in d.iterdir()
                    if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DatasetError(f"{root}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in it or its class folders")
    return files


@dataclass
class MethodCurves:
    """The running sums of one method's curves (all images share one set of fractions)."""

    deletion: list[np.ndarray] = field(default_factory=list)
    insertion: list[np.ndarray] = field(default_factory=list)


Rows = list[dict[str, Any]]


def score_images(explainer: Explainer, files: list[Path], methods: list[str], skipped: dict[str, str], *,
                 seed: int = 0, limit: int | None = None,
                 score: str = "probability") -> tuple[Rows, dict[str, MethodCurves], list[float]]:
    """Every (image, method) row of scores, each method's curves and the curves' fractions; `skipped` gets the
    methods this bundle's head does not define, with the reason."""
    scorer = FaithfulnessScorer(TrunkPasses.for_explainer(explainer, num_threads="auto"), score=score)
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    curves = {m: MethodCurves() for m in methods}
    fractions: list[float] = []
    for path in tqdm(files[:limit], desc="faithfulness", unit="img"):
        frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if frame is None:
            rows.append({"file": path.name, "error": "not a readable image"})
            continue
        x = explainer.preprocess(np.ascontiguousarray(frame[..., ::-1]))  # (H, W, 3) float32 model input
        top = explainer.explain_input(x)
        for method in [m for m in methods if m not in skipped]:
            try:
                cam_raw = (random_cam_raw(explainer.features(x), rng) if method == RANDOM
                           else explainer.explain_input(x, method=method, target=top.class_index).cam_raw)
            except MethodError as e:  # a method this head does not define (CAM needs GAP -> Dense)
                skipped[method] = str(e)
                continue
            result = scorer(x, cam_raw, top.class_index)
            if result.note is None:
                result.scores.update(road_scores(scorer, x, anchor_map(cam_raw, scorer.size), top.class_index,
                                                 rng=rng))
                curves[method].deletion.append(result.deletion)
                curves[method].insertion.append(result.insertion)
                fractions = result.fractions.tolist()
            rows.append({"file": path.name, "method": method, "class": top.label, **result.scores,
                         **({"note": result.note} if result.note else {})})
    return rows, curves, fractions


def summarise(rows: list[dict[str, Any]], methods: list[str]) -> tuple[dict[str, Any], list[str]]:
    """Per method, each score's mean, standard deviation and count; the methods ranked by their mean rank over RANKED
    (best first)."""
    summary: dict[str, Any] = {}
    for method in methods:
        mine = [r for r in rows if r.get("method") == method]
        names = sorted({k for r in mine for k in r if k in BETTER})
        summary[method] = {}
        for name in names:
            values = np.asarray([r[name] for r in mine if name in r], np.float64)
            summary[method][name] = {"mean": float(values.mean()), "std": float(values.std()), "n": int(values.size)}
    mean_rank = {m: 0.0 for m in methods}
    for name in RANKED:
        have = [m for m in methods if name in summary[m]]
        ordered = sorted(have, key=lambda m: -BETTER[name] * summary[m][name]["mean"])
        for rank, m in enumerate(ordered, 1):
            mean_rank[m] += rank / len(RANKED)
        for m in set(methods) - set(have):  # no defined score at all: last
            mean_rank[m] += (len(methods) + 1) / len(RANKED)
    return summary, sorted(methods, key=lambda m: mean_rank[m])


def plot_curves(path: Path, curves: dict[str, MethodCurves], fractions: list[float], title: str) -> None:
    """One panel per method: the mean deletion and insertion curves, their AUCs in the legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [m for m, c in curves.items() if c.deletion]
    cols = min(4, max(1, len(shown)))
    rows = (len(shown) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.8 * rows), squeeze=False, sharey=True)
    for ax, method in zip(axes.flat, shown, strict=False):
        for name, colour in (("deletion", "tab:red"), ("insertion", "tab:green")):
            mean = np.mean(getattr(curves[method], name), axis=0)
            ax.plot(fractions, mean, color=colour, label=f"{name} AUC {np.trapz(mean, fractions):.3f}")
        ax.set_title(method)
        ax.set_xlabel("fraction of pixels")
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(shown):]:
        ax.axis("off")
    axes[0][0].set_ylabel("class score")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def evaluate_faithfulness(bundle: Path, images: Path, out: Path, methods: list[str] | None = None,
                          split: str = "test", limit: int | None = None, seed: int = 0,
                          score: str = "probability") -> dict[str, Any]:
    explainer = Explainer.load(bundle)
    methods = methods or [*METHODS, RANDOM]
    unknown = [m for m in methods if m != RANDOM and m not in METHODS]
    if unknown:
        raise DatasetError(f"unknown method {unknown[0]!r}; choose from {', '.join([*METHODS, RANDOM])}")
    files = image_files(images, split)
    skipped: dict[str, str] = {}
    rows, curves, fractions = score_images(explainer, files, methods, skipped, seed=seed, limit=limit,
                                           score=score)
    methods = [m for m in methods if m not in skipped]
    rows = [r for r in rows if r.get("method") not in skipped]
    summary, ranking = summarise(rows, methods)
    report = {"bundle": str(bundle), "images": str(images), "score": score, "steps": len(fractions) - 1,
              "ranking": ranking, "summary": summary, "skipped": skipped, "per_image": rows}
    out.mkdir(parents=True, exist_ok=True)
    (out / "faithfulness.json").write_text(json.dumps(report, indent=1) + "\n")
    plot_curves(out / "faithfulness-curves.png", curves, fractions,
                f"{bundle.name}: mean deletion / insertion curves over {len(files[:limit])} images "
                f"(class {score})")
    return report


def table(report: dict[str, Any]) -> str:
    """The summary as a text table, best method first (mean ± standard deviation)."""
    names = [n for n in ("confidence_change", "drop_in_confidence", "increase_in_confidence", "deletion_auc",
                         "insertion_auc", "road_morf", "road_lerf", "road_combined")]
    short = ["conf.chg", "drop", "increase", "deletion", "insertion", "ROAD MoRF", "ROAD LeRF", "ROAD comb."]
    lines = [f"{'method':<10}" + "".join(f"{s:>17}" for s in short)]
    for method in report["ranking"]:
        cells = []
        for name in names:
            s = report["summary"][method].get(name)
            cells.append(f"{s['mean']:>9.3f} ±{s['std']:<6.3f}" if s else f"{'-':>17}")
        lines.append(f"{method:<10}" + "".join(cells))
    lines += [f"{method}: skipped ({reason})" for method, reason in report["skipped"].items()]
    lines.append("better: drop, deletion, ROAD MoRF lower; increase, insertion, ROAD LeRF and combined higher")
    return "\n".join(lines)
