"""Frame sequences for the drift monitor, from any folder of images: a fixed camera's normal frames, then one change.

Normal: the images in random order with the jitter a fixed camera sees (a few pixels of position, a few percent of
exposure, sensor noise). Changes: the camera moved (shift and small rotation), the lens smudged (blur and haze), the
lighting changed (gamma, white balance), the background replaced, a spurious patch added.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from tools.data.backgrounds import stripes
from tools.data.fruitset import IMAGE_SUFFIXES, DatasetError

U8 = NDArray[np.uint8]
SIZE = 160  # frame side, pixels
KINDS = ("normal", "moved", "smudged", "lighting", "background", "patch")
EXPLANATION_KINDS = ("moved", "background", "patch")  # changes that move what the model looks at


def load_images(folder: Path, limit: int = 60) -> list[U8]:
    """Up to limit images of a folder (recursively, sorted), as (SIZE, SIZE, 3) uint8 RGB."""
    files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DatasetError(f"{folder}: no images")
    step = max(1, len(files) // limit)
    images: list[U8] = []
    for f in files[::step][:limit]:
        bgr = cv2.imread(str(f), cv2.IMREAD_COLOR)
        if bgr is None:
            raise DatasetError(f"{f}: not a readable image")
        small = cv2.resize(bgr, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
        images.append(np.asarray(cv2.cvtColor(small, cv2.COLOR_BGR2RGB), np.uint8))
    return images


def _warp(image: U8, dx: float, dy: float, degrees: float) -> U8:
    m = np.asarray(cv2.getRotationMatrix2D((SIZE / 2, SIZE / 2), degrees, 1.0), np.float64)  # (2, 3)
    m[:, 2] += np.array([dx, dy])
    return np.asarray(cv2.warpAffine(image, m, (SIZE, SIZE), borderMode=cv2.BORDER_REPLICATE), np.uint8)


def jitter(image: U8, rng: np.random.Generator) -> U8:
    """What a fixed camera sees frame to frame: +-3 px, +-4 % exposure, noise of sigma 2."""
    dx, dy = rng.uniform(-3, 3, 2)
    moved = _warp(image, float(dx), float(dy), 0.0).astype(np.float32)
    noisy = moved * rng.uniform(0.96, 1.04) + rng.normal(0.0, 2.0, moved.shape)
    out: U8 = np.clip(noisy, 0, 255).astype(np.uint8)
    return out


def _foreground(image: U8) -> NDArray[np.float32]:
    """(H, W) float32 in [0, 1]: pixels unlike the border's median colour (the product on a plain table)."""
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]]).astype(np.float32)
    far = np.linalg.norm(image.astype(np.float32) - np.median(border, axis=0), axis=2) > 40
    mask = np.asarray(cv2.morphologyEx(far.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((7, 7), np.uint8)))
    return np.asarray(cv2.GaussianBlur(mask.astype(np.float32), (5, 5), 0)[..., None], np.float32)


def wood(size: int) -> NDArray[np.float32]:
    """(size, size, 3) float32: an orange-brown grain, a new table the colour of the fruit."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    t = (0.5 + 0.5 * np.sin(0.35 * xx + 3.0 * np.sin(0.06 * yy)))[..., None]
    return np.asarray(t * np.array([215, 125, 45], np.float32) + (1 - t) * np.array([120, 62, 24], np.float32),
                      np.float32)


def change(kind: str, seed: int = 0) -> Callable[[U8], U8]:
    """The change a scenario applies to every frame after its start (normal: none)."""
    rng = np.random.default_rng(seed)
    if kind == "normal":
        return lambda image: image
    if kind == "moved":
        return lambda image: _warp(image, 0.22 * SIZE, 0.12 * SIZE, 5.0)
    if kind == "smudged":
        return lambda image: np.asarray(cv2.addWeighted(cv2.GaussianBlur(image, (0, 0), 4.0), 0.65,
                                                        np.full_like(image, 200), 0.35, 0.0), np.uint8)
    if kind == "lighting":
        gains = np.array([1.08, 1.0, 0.85], np.float32)
        return lambda image: np.asarray(np.clip(255.0 * (image / 255.0) ** 1.5 * gains, 0, 255), np.uint8)
    if kind == "background":
        texture = wood(SIZE) if seed % 2 else stripes(SIZE, rng).astype(np.float32)

        def replaced(image: U8) -> U8:
            mask = _foreground(image)  # (H, W, 1) float32
            return np.asarray(mask * image + (1 - mask) * texture, np.uint8)
        return replaced
    if kind == "patch":
        def patch(image: U8) -> U8:
            out = image.copy()
            out[8:8 + SIZE // 4, SIZE - 8 - SIZE // 4:SIZE - 8] = (230, 40, 30)  # a red sticker, top right
            return out
        return patch
    raise ValueError(f"unknown scenario {kind!r}; choose one of {', '.join(KINDS)}")


def scenario(images: list[U8], kind: str, normal: int, after: int, seed: int = 0) -> Iterator[U8]:
    """normal jittered frames, then after frames with the change applied (before the jitter: the scene changed)."""
    rng = np.random.default_rng(seed)
    changed = change(kind, seed)
    for i in range(normal + after):
        image = images[int(rng.integers(len(images)))]
        yield jitter(changed(image) if i >= normal else image, rng)
