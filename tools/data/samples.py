"""Write the demo's sample images: held-out Fruits-360 test fruit, plain and on the evaluation backgrounds.

    python -m tools.data.samples DATA_DIR [--out samples] [--seed 7]
    python -m tools.data.samples DATA_DIR --frames 200 --split train --backgrounds train --out build/calibration

Every file is named after the fruit it shows (apfel_01.jpg; a two-fruit frame apfel+orange_01.jpg), which is what the
tests check the shipped model against. The images are derived from Fruits-360 (CC BY-SA 4.0, see samples/README.md) and
scikit-image's CC0 photographs; the choice is made by the seed, not by looking at the model's answers.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from tools.data import compositing
from tools.data.fruitset import FruitSet, load_split

PLAIN_PER_CLASS = 1
COMPOSITED_PER_CLASS = 2


def _write(path: Path, rgb: np.ndarray, size: int) -> None:
    big = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_CUBIC)  # a camera-like frame size
    if not cv2.imwrite(str(path), cv2.cvtColor(big, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92]):
        raise OSError(f"{path}: could not write")


def write_samples(data: FruitSet, out: Path, seed: int = 7, size: int = 300) -> list[Path]:
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    count: dict[str, int] = {}

    def name(label: str) -> Path:
        count[label] = count.get(label, 0) + 1
        return out / f"{label.lower()}_{count[label]:02d}.jpg"

    pool = data.with_masks()
    for c, cls in enumerate(data.class_names):
        own = [i for i in pool if data.labels[i] == c]
        for i in rng.choice(own, PLAIN_PER_CLASS, replace=False):
            written.append(name(cls))
            _write(written[-1], data.images[int(i)], size)
        for i in rng.choice(own, COMPOSITED_PER_CLASS, replace=False):
            # Without the training's simulated camera faults: a sample shows the fruit as photographed.
            frame, _, _ = compositing.frame(data, rng, "eval", compositing.EVAL_MIX, [int(i)], camera=False)
            written.append(name(cls))
            _write(written[-1], frame, size)
    for a, b in ((0, 1), (1, 2), (2, 0))[: len(data.class_names)]:
        first = int(rng.choice([i for i in pool if data.labels[i] == a]))
        second = int(rng.choice([i for i in pool if data.labels[i] == b]))
        frame, _ = compositing.pair(data, first, second, rng)
        written.append(name(f"{data.class_names[a]}+{data.class_names[b]}"))
        _write(written[-1], frame, size)
    return written


def write_frames(data: FruitSet, out: Path, count: int, split: str, seed: int) -> list[Path]:
    """count single-fruit composited frames at model size (int8 calibration, agreement checks): frame_0000.jpg ..."""
    frames = compositing.frames(data, count, np.random.default_rng(seed), split, compositing.EVAL_MIX)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"frame_{i:04d}.jpg" for i in range(count)]
    for path, x in zip(paths, frames.x, strict=True):
        _write(path, x, x.shape[0])
    return paths


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.data.samples", description=__doc__.splitlines()[0])
    p.add_argument("data_dir", type=Path)
    p.add_argument("--out", type=Path, default=Path("samples"))
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--frames", type=int, help="instead: this many composited frames (calibration / agreement sets)")
    p.add_argument("--split", default="test", help="dataset split to take fruit from (default test)")
    p.add_argument("--backgrounds", choices=("train", "eval"), default="eval")
    args = p.parse_args(argv)
    root = args.data_dir / args.split if (args.data_dir / args.split).is_dir() else args.data_dir
    data = load_split(root)
    if args.frames:
        written = write_frames(data, args.out, args.frames, args.backgrounds, args.seed)
        print(f"wrote {len(written)} frames to {args.out}")
    else:
        for path in write_samples(data, args.out, args.seed):
            print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
