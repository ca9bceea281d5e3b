"""Camera-like training and evaluation frames: fruit cut out with its mask and pasted on varied backgrounds.

A model trained on Fruits-360's white backgrounds learns the white (the wolf-and-snow story); pasting each fruit at
varied scale and position on textures and photographs, one to three fruits per frame, then spoiling colour, light, focus
and JPEG quality, makes the fruit the only thing that predicts the label. Every frame keeps a per-class mask of where
its fruit is, for the localisation measures of tools/evaluate and for mask-guided training.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from tools.data.backgrounds import background
from tools.data.fruitset import FruitSet

U8 = NDArray[np.uint8]


@dataclass(frozen=True)
class Mix:
    """Shares of frame kinds in a batch (the rest are single fruits on a background)."""

    plain: float = 0.1   # the original white-background image, only augmented
    two: float = 0.25    # two fruits side by side (different classes when possible)
    three: float = 0.05  # three fruits


EVAL_MIX = Mix(plain=0.0, two=0.0, three=0.0)


@dataclass
class Frames:
    """x (N, S, S, 3) uint8 RGB; y (N, C) float32 soft labels (share of fruits per class); masks (N, C, S, S) bool."""

    x: U8
    y: NDArray[np.float32]
    masks: NDArray[np.bool_]

    def pooled_masks(self, h: int, w: int) -> NDArray[np.float32]:
        """(N, h, w, C) float32: each class mask's share of every cell of an (h, w) feature map."""
        n, c = self.masks.shape[:2]
        out = np.empty((n, h, w, c), np.float32)
        for i in range(n):
            for j in range(c):
                out[i, :, :, j] = cv2.resize(self.masks[i, j].astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
        return out


def _cutout(image: U8, mask: NDArray[np.bool_], rng: np.random.Generator) -> tuple[U8, NDArray[np.float32]]:
    """The fruit's bounding box and a soft alpha, randomly rotated and flipped."""
    ys, xs = np.nonzero(mask)
    crop = image[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    alpha = mask[ys.min():ys.max() + 1, xs.min():xs.max() + 1].astype(np.uint8)
    # The white-background mask keeps a rim of bright anti-aliased pixels: shave it, or a pale halo marks every fruit.
    alpha = cv2.erode(alpha, np.ones((3, 3), np.uint8), iterations=2).astype(np.float32)
    k = int(rng.integers(4))
    crop, alpha = np.rot90(crop, k), np.rot90(alpha, k)
    if rng.random() < 0.5:
        crop, alpha = crop[:, ::-1], alpha[:, ::-1]
    return np.ascontiguousarray(crop), np.ascontiguousarray(alpha)


def _paste(frame: NDArray[np.float32], fruit: U8, alpha: NDArray[np.float32], box: tuple[int, int, int],
           ) -> NDArray[np.bool_]:
    """Blend fruit into frame with its top-left corner at (y, x), scaled so its longer side is d; returns its mask."""
    y, x, d = box
    h, w = alpha.shape
    scale = d / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    fruit_s = cv2.resize(fruit, size, interpolation=cv2.INTER_AREA).astype(np.float32)
    # A slightly soft edge, so a hard cut-out border is no cue for the model.
    alpha_s = cv2.GaussianBlur(cv2.resize(alpha, size, interpolation=cv2.INTER_AREA), (3, 3), 0)
    s = frame.shape[0]
    y1, x1 = min(s, y + size[1]), min(s, x + size[0])
    region = (slice(y, y1), slice(x, x1))
    a = alpha_s[: y1 - y, : x1 - x, None]
    frame[region] = frame[region] * (1 - a) + fruit_s[: y1 - y, : x1 - x] * a
    mask = np.zeros(frame.shape[:2], bool)
    mask[region] = alpha_s[: y1 - y, : x1 - x] > 0.5
    return mask


def _boxes(count: int, s: int, rng: np.random.Generator) -> list[tuple[int, int, int]]:
    """(y, x, d) per fruit: one fruit anywhere; several in separate cells of a row or column, not overlapping."""
    if count == 1:
        d = int(rng.uniform(0.35, 0.95) * s)
        return [(int(rng.integers(0, s - d + 1)), int(rng.integers(0, s - d + 1)), d)]
    cell = s // count
    d = int(rng.uniform(0.6, 0.95) * min(cell, s))
    vertical = rng.random() < 0.3
    boxes = []
    for i in range(count):
        along = i * cell + int(rng.integers(0, cell - d + 1))
        across = int(rng.integers(0, s - d + 1))
        boxes.append((along, across, d) if vertical else (across, along, d))
    return boxes


def augment(image: U8, rng: np.random.Generator) -> U8:
    """Colour, light, focus, sensor noise and JPEG artefacts of a cheap camera; no hue shift (hue is the cue)."""
    f = image.astype(np.float32)
    f = f * rng.uniform(0.6, 1.3) + rng.uniform(-25, 25)  # exposure and black level
    grey = f.mean(axis=2, keepdims=True)
    f = grey + (f - grey) * rng.uniform(0.6, 1.3)  # saturation
    f = f * rng.uniform(0.9, 1.1, 3)  # white balance
    if rng.random() < 0.4:  # light falling off across the frame
        s = f.shape[0]
        ramp = np.linspace(rng.uniform(0.6, 1.0), rng.uniform(1.0, 1.3), s, dtype=np.float32)
        f = f * (ramp[:, None, None] if rng.random() < 0.5 else ramp[None, :, None])
    if rng.random() < 0.3:
        f = cv2.GaussianBlur(f, (0, 0), rng.uniform(0.5, 1.5))
    if rng.random() < 0.4:
        f = f + rng.normal(0, rng.uniform(2, 10), f.shape).astype(np.float32)
    out = np.clip(f, 0, 255).astype(np.uint8)
    if rng.random() < 0.5:
        ok, jpeg = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(25, 95))])
        if ok:
            out = np.asarray(cv2.imdecode(jpeg, cv2.IMREAD_UNCHANGED))
    return out


def _pick(data: FruitSet, pool: list[int], count: int, rng: np.random.Generator) -> list[int]:
    """count pooled image indices, of different classes while there are classes left."""
    chosen: list[int] = []
    for _ in range(count):
        used = {data.labels[i] for i in chosen}
        fresh = [i for i in pool if data.labels[i] not in used] if len(used) < len(data.class_names) else pool
        options = fresh or pool
        chosen.append(options[int(rng.integers(len(options)))])
    return chosen


def frame(data: FruitSet, rng: np.random.Generator, split: str = "train", mix: Mix = Mix(),
          pool: list[int] | None = None, camera: bool = True) -> tuple[U8, NDArray[np.float32], NDArray[np.bool_]]:
    """One frame: (S, S, 3) uint8, (C,) soft label, (C, S, S) per-class mask; camera=False skips the camera faults."""
    pool = data.with_masks() if pool is None else pool
    s, c = data.images[0].shape[0], len(data.class_names)
    y = np.zeros(c, np.float32)
    masks = np.zeros((c, s, s), bool)
    r = rng.random()
    if r < mix.plain or not pool:
        i = int(rng.integers(len(data)))
        y[data.labels[i]] = 1
        m = data.masks[i]
        masks[data.labels[i]] = m if m is not None else True
        return augment(data.images[i], rng), y, masks
    count = 3 if r < mix.plain + mix.three else 2 if r < mix.plain + mix.three + mix.two else 1
    canvas = background(s, rng, split).astype(np.float32)
    for i, box in zip(_pick(data, pool, count, rng), _boxes(count, s, rng), strict=True):
        fruit, alpha = _cutout(data.images[i], data.masks[i], rng)  # type: ignore[arg-type]
        masks[data.labels[i]] |= _paste(canvas, fruit, alpha, box)
        y[data.labels[i]] += 1
    image = np.clip(canvas, 0, 255).astype(np.uint8)
    return (augment(image, rng) if camera else image), y / y.sum(), masks


def frames(data: FruitSet, n: int, rng: np.random.Generator, split: str = "train", mix: Mix = Mix()) -> Frames:
    """n frames stacked (see frame)."""
    pool = data.with_masks()
    s, c = data.images[0].shape[0], len(data.class_names)
    out = Frames(np.empty((n, s, s, 3), np.uint8), np.empty((n, c), np.float32), np.empty((n, c, s, s), bool))
    for k in range(n):
        out.x[k], out.y[k], out.masks[k] = frame(data, rng, split, mix, pool)
    return out


def pair(data: FruitSet, first: int, second: int, rng: np.random.Generator, split: str = "eval",
         ) -> tuple[U8, NDArray[np.bool_]]:
    """Two given fruits side by side (left, right) on a background: (S, S, 3) uint8 and (2, S, S) masks."""
    s = data.images[0].shape[0]
    canvas = background(s, rng, split).astype(np.float32)
    d = int(rng.uniform(0.4, 0.48) * s)
    masks = np.zeros((2, s, s), bool)
    for k, i in enumerate((first, second)):
        fruit, alpha = _cutout(data.images[i], data.masks[i], rng)  # type: ignore[arg-type]
        x = int(rng.integers(0, s // 2 - d + 1)) + k * (s // 2)
        masks[k] = _paste(canvas, fruit, alpha, (int(rng.integers(0, s - d + 1)), x, d))
    return np.clip(canvas, 0, 255).astype(np.uint8), masks
