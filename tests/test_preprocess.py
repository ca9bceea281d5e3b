"""Preprocessing: the table lookup gives exactly the manifest's formula, resize, channel order, scale and offset."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge.bundle import Preprocess
from edge.errors import InputError
from edge.preprocess import Preprocessor

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
