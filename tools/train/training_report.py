"""What a training run leaves beside its model: a JSON summary and a history plot (PNG)."""

from __future__ import annotations

import json
import platform
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tools.data.fruitset import FruitSet


def summary(options: Any, train_set: FruitSet, valid_set: FruitSet, target: str, history: list[dict[str, float]],
            seconds: float) -> dict[str, Any]:
    import tensorflow as tf

    best = max(history, key=lambda r: (r["val_accuracy"], r["val_pointing"])) if history else {}
    return {
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(options).items()},
        "class_names": train_set.class_names,
        "images": {"train": len(train_set), "valid": len(valid_set), "train_with_mask": len(train_set.with_masks())},
        "target_layer": target,
        "best_epoch": best.get("epoch"),
        "best": best,
        "history": history,
        "seconds": round(seconds, 1),
        "tensorflow": tf.__version__,
        "machine": f"{platform.machine()} {platform.processor() or platform.system()}",
    }


def paths(out: Path) -> tuple[Path, Path]:
    """(summary JSON, history PNG) beside the model: model.keras -> model.summary.json, model.history.png."""
    return out.with_suffix(".summary.json"), out.with_suffix(".history.png")


def write(out: Path, data: dict[str, Any], history: list[dict[str, float]]) -> None:
    summary_path, plot_path = paths(out)
    summary_path.write_text(json.dumps(data, indent=2, default=float) + "\n")
    plot(plot_path, history, title=f"{out.name}: {data['options']['arch']}, guide={data['options']['guide']}")


def plot(path: Path, history: list[dict[str, float]], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in history]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    panels = (("loss", ("train_loss", "val_loss")), ("accuracy", ("train_accuracy", "val_accuracy")),
              ("localisation", ("train_guide", "val_guide", "val_pointing")))
    for ax, (name, keys) in zip(axes, panels, strict=True):
        for key in keys:
            ax.plot(epochs, [r[key] for r in history], marker="o", label=key)
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
