"""Preprocessing: the table lookup gives exactly the manifest's formula, resize, channel order, scale and offset; and
every --preprocess preset gives the input its model's ecosystem gives."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.errors import InputError
from edge.explain.bundle import Preprocess
from edge.explain.preprocess import Preprocessor
from tools.export import preprocess_spec

SPECS = [
    Preprocess(scale=(1 / 255,) * 3),  # "unit"
    Preprocess(channel_order="BGR", scale=(1 / 127.5,) * 3, offset=(-1.0,) * 3),  # "symmetric", BGR model
    Preprocess(channel_order="BGR", scale=(0.0171, 0.0175, 0.0174), offset=(-2.118, -2.036, -1.804), resize="area"),
]


@pytest.mark.parametrize("spec", SPECS)
def test_preprocess_is_the_manifest_formula_to_the_bit(spec: Preprocess) -> None:
    frame = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    x = Preprocessor(spec, (100, 96, 3))(frame)
    interpolation = cv2.INTER_AREA if spec.resize == "area" else cv2.INTER_LINEAR
    resized = cv2.resize(frame, (96, 100), interpolation=interpolation)
    if spec.channel_order == "BGR":
        resized = resized[:, :, ::-1]
    expected = resized.astype(np.float32) * np.asarray(spec.scale, np.float32) + np.asarray(spec.offset, np.float32)
    assert x.shape == (100, 96, 3) and x.dtype == np.float32 and x.flags.c_contiguous
    np.testing.assert_array_equal(x, expected)


def test_a_frame_of_the_input_size_is_not_resized_and_bad_frames_are_refused() -> None:
    frame = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    x = Preprocessor(Preprocess(), (4, 5, 3))(frame)
    np.testing.assert_array_equal(x, frame.astype(np.float32))
    with pytest.raises(InputError, match=r"\(H, W, 3\) uint8 RGB"):
        Preprocessor(Preprocess(), (4, 5, 3))(frame.astype(np.float32))


def _presets(zoo: Path) -> dict[str, np.ndarray]:
    with np.load(zoo / "refs" / "presets.npz") as npz:
        return {name: npz[name] for name in npz.files}


PRESETS = ["unit", "symmetric", "imagenet", "caffe", "mean_std", "scale_offset", "unit_bgr", "none"]


@pytest.mark.parametrize("preset", PRESETS)
def test_each_preset_reproduces_its_ecosystems_input(zoo: Path, preset: str) -> None:
    """The manifest written for --preprocess P [--channel-order O], applied to real photographs, equals what the
    convention's own code makes of them (tools/verify/ecosystem.py: keras.applications' preprocess_input, Keras
    Normalization / Rescaling layers, cv2.imread's BGR order), computed with TensorFlow in the zoo's subprocess."""
    refs = _presets(zoo)
    spec = preprocess_spec.parse(str(refs[f"{preset}.preprocess"]), str(refs[f"{preset}.channel_order"]) or None)
    expected = refs[f"{preset}.x"]
    assert np.ptp(expected) > 0, "a constant reference would make this test vacuous"
    for frame, x_ref in zip(refs["frames"], expected, strict=True):
        x = Preprocessor(spec, frame.shape)(frame)  # no resize: the frame is the input size
        # float32 rounding of (x - mean) / std against x * scale + offset: a few ulps of the largest |x|
        np.testing.assert_allclose(x, x_ref, rtol=0, atol=2e-6 * max(1.0, float(np.abs(x_ref).max())))


def test_the_presets_differ_where_conventions_differ(zoo: Path) -> None:
    """The references are what the conventions say, not one function under eight names: cv2.imread's order is RGB
    reversed, caffe is BGR minus the ImageNet mean in BGR order."""
    refs = _presets(zoo)
    assert not np.allclose(refs["unit.x"], refs["unit_bgr.x"])
    np.testing.assert_array_equal(refs["unit.x"][..., ::-1], refs["unit_bgr.x"])
    bgr_mean = np.array([103.939, 116.779, 123.68], np.float32)
    np.testing.assert_allclose(refs["caffe.x"], refs["none.x"][..., ::-1] - bgr_mean, atol=1e-4)


@pytest.mark.parametrize("shape", [(4, 5), (4, 5, 4), (4, 5, 1), (0, 5, 3), (4, 0, 3)])
def test_frames_that_are_not_rgb_images_are_refused_by_name(shape: tuple[int, ...]) -> None:
    with pytest.raises(InputError, match=rf"got shape \({shape[0]}, {shape[1]}"):
        Preprocessor(Preprocess(), (4, 5, 3))(np.zeros(shape, np.uint8))


def test_a_one_pixel_frame_is_a_frame() -> None:
    x = Preprocessor(Preprocess(scale=(0.5,) * 3), (2, 3, 3))(np.full((1, 1, 3), 10, np.uint8))
    np.testing.assert_array_equal(x, np.full((2, 3, 3), 5.0, np.float32))
