"""A folder-per-class image dataset with a fruit mask per image (TensorFlow-free).

Layout: DATA_DIR/{train,valid,test}/<Class>/<image>.jpg (or a DATA_DIR/<Class>/ tree that tools/train splits itself).
Masks: a PNG beside the images in a `masks/` folder with the same stem (<Class>/masks/<image>.png, non-zero = object);
without one, an image on a white background gets its mask from the background: min(R, G, B) < 230, enclosed holes
filled (the Fruits-360 README's recipe). An image with neither is still used for plain classification, never pasted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

U8 = NDArray[np.uint8]
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
WHITE_THRESHOLD = 230
# A white-background mask outside these shares of the frame is not a mask (a photo with no white background).
MASK_SHARE = (0.03, 0.97)

_LOGGER = logging.getLogger(__name__)


class DatasetError(Exception):
    """A dataset folder that cannot be used, with the path and what is wrong."""


def white_background_mask(image: U8) -> NDArray[np.bool_]:
    """(H, W) bool: the object on a white background (min channel below 230), enclosed holes filled."""
    mask = image.min(axis=2) < WHITE_THRESHOLD
    return np.asarray(ndimage.binary_fill_holes(mask), dtype=bool)


@dataclass
class FruitSet:
    """Images of one split: images[i] (S, S, 3) uint8 RGB, labels[i] class index, masks[i] (S, S) bool or None."""

    class_names: list[str]
    images: list[U8] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    masks: list[NDArray[np.bool_] | None] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.images)

    def with_masks(self) -> list[int]:
        """Indices of the images that have a mask (the ones that can be pasted on backgrounds)."""
        return [i for i, m in enumerate(self.masks) if m is not None]

    def subset(self, indices: list[int]) -> FruitSet:
        return FruitSet(self.class_names, [self.images[i] for i in indices], [self.labels[i] for i in indices],
                        [self.masks[i] for i in indices], [self.paths[i] for i in indices])

    def x(self) -> U8:
        """(N, S, S, 3) uint8: all images stacked."""
        return np.stack(self.images) if self.images else np.zeros((0, 1, 1, 3), np.uint8)


def class_dirs(root: Path) -> list[Path]:
    dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not dirs:
        raise DatasetError(f"{root}: no class folders (expected one folder per class, e.g. Apfel/ Orange/ Tomate/)")
    return dirs


def _read_rgb(path: Path, size: int) -> U8 | None:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        _LOGGER.warning("%s: not a readable image, skipped", path)
        return None
    if bgr.shape[:2] != (size, size):
        bgr = cv2.resize(bgr, (size, size), interpolation=cv2.INTER_AREA)
    return np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def _mask_for(path: Path, image: U8, size: int) -> NDArray[np.bool_] | None:
    given = path.parent / "masks" / f"{path.stem}.png"
    if given.exists():
        m = cv2.imread(str(given), cv2.IMREAD_GRAYSCALE)
        if m is None:
            raise DatasetError(f"{given}: the mask is not a readable PNG")
        return np.asarray(cv2.resize(m, (size, size), interpolation=cv2.INTER_NEAREST) > 0)
    mask = white_background_mask(image)
    return mask if MASK_SHARE[0] <= mask.mean() <= MASK_SHARE[1] else None


def load_split(root: Path, class_names: list[str] | None = None, size: int = 100, limit: int | None = None) -> FruitSet:
    """Read root/<Class>/* (sorted); class names from the folders unless given (then they must all exist)."""
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder")
    names = class_names or [d.name for d in class_dirs(root)]
    out = FruitSet(list(names))
    for label, name in enumerate(names):
        folder = root / name
        if not folder.is_dir():
            raise DatasetError(f"{folder}: missing (the classes are {', '.join(names)})")
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DatasetError(f"{folder}: no images")
        for path in files[:limit]:
            image = _read_rgb(path, size)
            if image is None:
                continue
            out.images.append(image)
            out.labels.append(label)
            out.masks.append(_mask_for(path, image, size))
            out.paths.append(path)
    return out


def load_dataset(data_dir: Path, size: int = 100, limit: int | None = None,
                 seed: int = 0) -> tuple[FruitSet, FruitSet, FruitSet | None]:
    """(train, valid, test or None): from train/ valid/ [test/] splits, or a 80/20 split of a flat class tree."""
    if (data_dir / "train").is_dir():
        train = load_split(data_dir / "train", size=size, limit=limit)
        if not (data_dir / "valid").is_dir():
            train, valid = _split(train, 0.2, seed)
        else:
            valid = load_split(data_dir / "valid", train.class_names, size, limit)
        test = load_split(data_dir / "test", train.class_names, size, limit) if (data_dir / "test").is_dir() else None
        return train, valid, test
    train, valid = _split(load_split(data_dir, size=size, limit=limit), 0.2, seed)
    return train, valid, None


def _split(data: FruitSet, share: float, seed: int) -> tuple[FruitSet, FruitSet]:
    order = np.random.default_rng(seed).permutation(len(data))
    cut = max(1, int(len(data) * share))
    return data.subset(sorted(order[cut:].tolist())), data.subset(sorted(order[:cut].tolist()))
