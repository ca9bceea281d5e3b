"""Two bundles' heatmaps on the same frames, side by side (e.g. unguided vs mask-guided training).

    python -m tools.evaluate.before_after BUNDLE_A BUNDLE_B DATA_DIR --out sheet.png [--frames 6] [--pairs 3]

Frames are the held-out fruit pasted on the evaluation-only backgrounds (fixed seed), single fruits and two-fruit
frames; for a two-fruit frame each bundle shows the heatmap of the left fruit's class. Runs on the device's code.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from edge.explain.explainer import Explainer
from tools.common.contact_sheet import overlay_rgb, write_sheet
from tools.data import compositing
from tools.data.fruitset import load_split


def sheet(a: Path, b: Path, data_dir: Path, out: Path, frames: int = 6, pairs: int = 3, seed: int = 2024) -> None:
    explainers = [Explainer.load(a), Explainer.load(b)]
    root = data_dir / "test" if (data_dir / "test").is_dir() else data_dir
    data = load_split(root, explainers[0].class_names, explainers[0].manifest.input_shape[0])
    rng = np.random.default_rng(seed)
    shots: list[tuple[np.ndarray, int]] = []
    single = compositing.frames(data, frames, rng, "eval", compositing.EVAL_MIX)
    shots += [(x, int(np.argmax(y))) for x, y in zip(single.x, single.y, strict=True)]
    pool = data.with_masks()
    for _ in range(pairs):
        first, second = (int(i) for i in rng.choice(pool, 2, replace=False))
        while data.labels[first] == data.labels[second]:
            second = int(rng.choice(pool))
        frame, _ = compositing.pair(data, first, second, rng)
        shots.append((frame, data.labels[first]))
    rows = []
    for frame, truth in shots:
        row = [(frame, f"explain {data.class_names[truth]}")]
        for name, ex in zip((a.name, b.name), explainers, strict=True):
            e = ex.explain(frame, target=truth)
            row.append((overlay_rgb(frame, e.cam), f"{name}: p={e.probabilities[truth]:.2f}"))
        rows.append(row)
    write_sheet(out, rows, title=f"frame | {a.name} | {b.name}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.evaluate.before_after", description=__doc__.splitlines()[0])
    p.add_argument("bundle_a", type=Path)
    p.add_argument("bundle_b", type=Path)
    p.add_argument("data_dir", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--frames", type=int, default=6)
    p.add_argument("--pairs", type=int, default=3)
    args = p.parse_args(argv)
    sheet(args.bundle_a, args.bundle_b, args.data_dir, args.out, args.frames, args.pairs)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
