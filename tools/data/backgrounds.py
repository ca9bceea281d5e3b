"""Backgrounds to paste fruit on: procedural textures and scikit-image's bundled photographs, split train / eval.

Nothing is downloaded: the photographs are the ones `skimage.data` ships inside the package. The evaluation split holds
photographs that training never sees (a cat, a coffee table, gravel, a brick wall), so tools/evaluate measures the model
on backgrounds it could not have memorised.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import cv2
import numpy as np
from numpy.typing import NDArray

U8 = NDArray[np.uint8]

# skimage.data loaders shipped in the wheel (no pooch download). Grey ones are tinted at random when used.
TRAIN_PHOTOS = ("astronaut", "rocket", "immunohistochemistry", "hubble_deep_field", "retina", "colorwheel",
                "grass", "camera", "moon", "clock", "coins", "cell", "text", "page")
EVAL_PHOTOS = ("chelsea", "coffee", "gravel", "brick")
SPLITS = ("train", "eval")


@cache
def _photo(name: str) -> U8:
    """A bundled photograph as (H, W, 3) uint8 RGB (grey ones replicated)."""
    from skimage import data  # imported here: only training and evaluation need scikit-image

    image = np.asarray(getattr(data, name)())
    if image.dtype != np.uint8:
        image = (np.clip(image, 0, 1) * 255).astype(np.uint8)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return np.ascontiguousarray(image[..., :3])


def _random_colour(rng: np.random.Generator) -> NDArray[np.float32]:
    return rng.uniform(0, 255, 3).astype(np.float32)


def _crop(photo: U8, size: int, rng: np.random.Generator) -> U8:
    """A random square crop (between a fifth and all of the short side), flipped at random, resized to size."""
    h, w = photo.shape[:2]
    side = int(rng.uniform(0.2, 1.0) * min(h, w))
    y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
    crop = photo[y:y + side, x:x + side]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return np.asarray(cv2.resize(np.ascontiguousarray(crop), (size, size), interpolation=cv2.INTER_AREA))


def photo(size: int, rng: np.random.Generator, names: tuple[str, ...]) -> U8:
    image = _crop(_photo(names[rng.integers(len(names))]), size, rng)
    if image[..., 0].tobytes() == image[..., 1].tobytes():  # grey photograph: tint it
        tint = rng.uniform(0.5, 1.2, 3).astype(np.float32)
        image = np.clip(image.astype(np.float32) * tint, 0, 255).astype(np.uint8)
    return image


def gradient(size: int, rng: np.random.Generator) -> U8:
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    t = (np.cos(angle) * xx + np.sin(angle) * yy)
    t = (t - t.min()) / max(float(np.ptp(t)), 1e-6)
    a, b = _random_colour(rng), _random_colour(rng)
    return (a * (1 - t[..., None]) + b * t[..., None]).astype(np.uint8)


def smooth_noise(size: int, rng: np.random.Generator) -> U8:
    """Low-frequency colour noise: blotches like a cloth, a wall or an out-of-focus room."""
    cells = int(rng.integers(2, 12))
    low = rng.uniform(0, 255, (cells, cells, 3)).astype(np.float32)
    return np.asarray(cv2.resize(low, (size, size), interpolation=cv2.INTER_CUBIC).clip(0, 255).astype(np.uint8))


def stripes(size: int, rng: np.random.Generator) -> U8:
    """Stripes, checks or wood-like grain: regular structure the model must learn to ignore."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    freq = rng.uniform(0.05, 0.6)
    angle = rng.uniform(0, np.pi)
    wave = np.sin(freq * (np.cos(angle) * xx + np.sin(angle) * yy) + rng.uniform(0, 3) * np.sin(0.05 * yy))
    if rng.random() < 0.3:
        wave = wave * np.sin(freq * (np.sin(angle) * xx - np.cos(angle) * yy))
    t = (wave > 0).astype(np.float32) if rng.random() < 0.5 else (wave + 1) / 2
    a, b = _random_colour(rng), _random_colour(rng)
    return (a * (1 - t[..., None]) + b * t[..., None]).astype(np.uint8)


def plain(size: int, rng: np.random.Generator) -> U8:
    """A plain colour, often near white or grey (the training photos' own background, a table, a wall)."""
    if rng.random() < 0.5:
        colour = np.full(3, rng.uniform(150, 255), np.float32) + rng.normal(0, 8, 3)
    else:
        colour = _random_colour(rng)
    return np.broadcast_to(np.clip(colour, 0, 255).astype(np.uint8), (size, size, 3)).copy()


def clutter(base: U8, rng: np.random.Generator) -> U8:
    """Random filled shapes and lines over a background: distractors with edges and colours of their own."""
    out = base.copy()
    size = out.shape[0]
    for _ in range(int(rng.integers(2, 10))):
        colour = tuple(int(c) for c in _random_colour(rng))
        kind = rng.integers(3)
        p = tuple(int(v) for v in rng.integers(0, size, 2))
        if kind == 0:
            cv2.circle(out, p, int(rng.integers(3, size // 4)), colour, -1, cv2.LINE_AA)
        elif kind == 1:
            q = tuple(int(v) for v in rng.integers(0, size, 2))
            cv2.rectangle(out, p, q, colour, -1)
        else:
            q = tuple(int(v) for v in rng.integers(0, size, 2))
            cv2.line(out, p, q, colour, int(rng.integers(1, 6)), cv2.LINE_AA)
    return out


PROCEDURAL: tuple[Callable[[int, np.random.Generator], U8], ...] = (gradient, smooth_noise, stripes, plain)


def background(size: int, rng: np.random.Generator, split: str = "train") -> U8:
    """One (size, size, 3) uint8 RGB background from the given split ('train' or 'eval')."""
    if split not in SPLITS:
        raise ValueError(f"unknown background split {split!r}: use one of {', '.join(SPLITS)}")
    if split == "eval":
        return photo(size, rng, EVAL_PHOTOS)
    if rng.random() < 0.4:
        image = photo(size, rng, TRAIN_PHOTOS)
    else:
        image = PROCEDURAL[rng.integers(len(PROCEDURAL))](size, rng)
    if rng.random() < 0.4:
        image = clutter(image, rng)
    return image
