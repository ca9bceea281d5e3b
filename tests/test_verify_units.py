"""tools.verify's parts that need no TensorFlow: the correlation is Pearson's and images are read as RGB, spread over
the folders (its verdict on exact and wrong bundles: tests/test_verify.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tools.verify import verifier


def test_pearson_correlation() -> None:
    rng = np.random.default_rng(0)
    a, noise = rng.normal(size=(6, 7)), rng.normal(size=(6, 7))
    b = a + 0.5 * noise
    assert verifier._pearson(a, b) == pytest.approx(np.corrcoef(a.ravel(), b.ravel())[0, 1], rel=1e-9)
    assert verifier._pearson(a, -3 * a + 1) == pytest.approx(-1.0)
    flat = np.full((6, 7), 2.0)
    assert verifier._pearson(flat, flat.copy()) == 1.0  # two flat maps are the same map
    assert verifier._pearson(flat, flat + 1) == 1.0  # ... up to an offset, which Pearson ignores
    assert verifier._pearson(flat, a) == 0.0


def test_images_are_read_as_rgb_and_spread_over_the_folders(tmp_path: Path) -> None:
    import cv2

    for folder, colour in (("a", (0, 0, 255)), ("b", (255, 0, 0))):  # BGR red, BGR blue
        (tmp_path / folder).mkdir()
        for i in range(4):
            cv2.imwrite(str(tmp_path / folder / f"{i}.png"), np.full((8, 8, 3), colour, np.uint8))
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    paths, images = verifier.load_images(tmp_path, 2)
    assert [p.parent.name for p in paths] == ["a", "b"]  # one from each folder, not the first two of "a"
    assert tuple(images[0][0, 0]) == (255, 0, 0) and tuple(images[1][0, 0]) == (0, 0, 255)  # RGB
    (tmp_path / "empty").mkdir()
    with pytest.raises(verifier.VerifyError, match="no readable images"):
        verifier.load_images(tmp_path / "empty", 3)


def test_every_image_is_read_when_there_are_fewer_than_the_limit(tmp_path: Path) -> None:
    import cv2

    for i in range(5):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.full((4, 4, 3), 40 * i, np.uint8))
    paths, images = verifier.load_images(tmp_path, 32)
    assert [p.name for p in paths] == [f"{i}.png" for i in range(5)] and len(images) == 5
