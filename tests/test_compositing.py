"""Masks, datasets and composited frames (TensorFlow-free, on real Fruits-360 images copied into a tiny dataset)."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import tiny_dataset

from tools.data import backgrounds, compositing
from tools.data.fruitset import DatasetError, load_dataset, load_split, white_background_mask


def test_white_background_mask_fills_enclosed_holes() -> None:
    image = np.full((50, 50, 3), 255, np.uint8)
    cv2.circle(image, (25, 25), 15, (200, 30, 30), -1)
    cv2.circle(image, (25, 25), 4, (255, 255, 255), -1)  # a white highlight inside the fruit
    mask = white_background_mask(image)
    assert mask[25, 25] and mask[25, 12] and not mask[2, 2]
    assert abs(mask.sum() - np.pi * 15**2) < 0.1 * np.pi * 15**2


def test_dataset_reads_splits_masks_and_skips_unreadable(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = tiny_dataset(tmp_path / "data", per_class=3)
    (root / "train" / "Apfel" / "broken.jpg").write_bytes(b"not a jpeg")
    given = np.zeros((100, 100), np.uint8)
    given[:10, :10] = 255
    first = sorted((root / "train" / "Orange").glob("*.jpg"))[0]
    (first.parent / "masks").mkdir()
    cv2.imwrite(str(first.parent / "masks" / f"{first.stem}.png"), given)
    with caplog.at_level(logging.WARNING):
        train, valid, test = load_dataset(root)
    assert "broken.jpg: not a readable image" in caplog.text
    assert train.class_names == ["Apfel", "Orange", "Tomate"] and len(train) == 9 and len(valid) == 9
    assert test is not None and len(test) == 9
    orange = train.paths.index(first)
    assert train.masks[orange] is not None and train.masks[orange].sum() == 100  # the given mask, not the white one
    shares = [m.mean() for i, m in enumerate(train.masks) if m is not None and i != orange]
    assert len(shares) == 8 and all(0.3 < s < 0.95 for s in shares)  # Fruits-360 fruit covers most of the frame


def test_flat_class_tree_is_split_and_missing_classes_named(tmp_path: Path) -> None:
    root = tiny_dataset(tmp_path / "data", per_class=5) / "train"
    train, valid, test = load_dataset(root, seed=3)
    assert test is None and len(train) + len(valid) == 15 and len(valid) == 3
    with pytest.raises(DatasetError, match="Kiwi: missing"):
        load_split(root, ["Apfel", "Kiwi"])
    with pytest.raises(DatasetError, match="not a folder"):
        load_split(tmp_path / "nowhere")


def test_frames_have_soft_labels_and_per_class_masks(tmp_path: Path) -> None:
    train, _, _ = load_dataset(tiny_dataset(tmp_path / "data", per_class=4))
    f = compositing.frames(train, 60, np.random.default_rng(0), mix=compositing.Mix(plain=0.1, two=0.4, three=0.1))
    assert f.x.shape == (60, 100, 100, 3) and f.x.dtype == np.uint8
    assert np.allclose(f.y.sum(axis=1), 1.0)
    kinds = {int((row > 0).sum()) for row in f.y}
    assert kinds >= {1, 2}  # single-fruit and mixed frames
    present = f.y > 0
    assert np.all(f.masks.any(axis=(2, 3)) == present)  # a mask exactly for each class in the frame
    pooled = f.pooled_masks(4, 4)
    assert pooled.shape == (60, 4, 4, 3) and pooled.min() >= 0 and pooled.max() <= 1
    assert np.allclose(pooled.mean(axis=(1, 2)), f.masks.mean(axis=(2, 3)), atol=1e-5)  # area pooling keeps shares


def test_pasted_fruit_keeps_its_colour_and_the_background_changes(tmp_path: Path) -> None:
    train, _, _ = load_dataset(tiny_dataset(tmp_path / "data", per_class=2))
    rng = np.random.default_rng(5)
    f = compositing.frames(train, 40, rng, "eval", compositing.EVAL_MIX)
    outside = [x[~m.any(axis=0)] for x, m in zip(f.x, f.masks, strict=True)]
    white = [float((o.min(axis=1) > 230).mean()) for o in outside if len(o)]
    assert np.median(white) < 0.2  # the background is no longer the white of the originals
    pair, masks = compositing.pair(train, 0, 3, rng)
    assert pair.shape == (100, 100, 3) and masks.shape == (2, 100, 100)
    assert not (masks[0] & masks[1]).any()
    assert masks[0].nonzero()[1].max() < masks[1].nonzero()[1].min()  # left fruit, then right fruit


def test_eval_backgrounds_are_never_training_backgrounds() -> None:
    assert not set(backgrounds.TRAIN_PHOTOS) & set(backgrounds.EVAL_PHOTOS)
    rng = np.random.default_rng(0)
    eval_crops = [backgrounds.background(64, rng, "eval") for _ in range(5)]
    assert all(c.shape == (64, 64, 3) and c.dtype == np.uint8 for c in eval_crops)
    with pytest.raises(ValueError, match="unknown background split"):
        backgrounds.background(64, rng, "test")
