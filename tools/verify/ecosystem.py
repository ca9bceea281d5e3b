"""Model inputs built the way each model's own ecosystem builds them: the zoo's references, never edge's Preprocessor.

A bundle's `--preprocess` preset claims to reproduce a convention (x / 255 of the tutorials, MobileNet's and ResNet's
`preprocess_input`, a Keras Normalization or Rescaling layer, `cv2.imread`'s BGR order). If the reference input were
made by edge.explain.preprocess, a wrong preset would be compared with itself and pass; so each one is made here by the
ecosystem's own function, and the parity tests feed the device the raw frame.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

Frames = NDArray[np.uint8]  # (n, h, w, 3) uint8 RGB, at the model's input size
Inputs = NDArray[np.float32]  # (n, h, w, 3) float32, what the Keras model is fed
InputBuilder = Callable[[Frames], Inputs]


def _f32(x: object) -> Inputs:
    import keras

    return np.asarray(keras.ops.convert_to_numpy(x), np.float32)


def tutorial_unit(frames: Frames) -> Inputs:
    """The fruit tutorials: `img = img / 255.` on the RGB array."""
    return (frames / 255.0).astype(np.float32)


def raw_pixels(frames: Frames) -> Inputs:
    """A model with its own Rescaling layer is fed the pixels as they are."""
    return frames.astype(np.float32)


def mobilenet_v2(frames: Frames) -> Inputs:
    import keras

    return _f32(keras.applications.mobilenet_v2.preprocess_input(frames.astype(np.float32)))


def resnet50_caffe(frames: Frames) -> Inputs:
    """Takes RGB, flips to BGR and subtracts the ImageNet mean, as VGG16/ResNet50 expect."""
    import keras

    return _f32(keras.applications.resnet50.preprocess_input(frames.astype(np.float32)))


def densenet_torch(frames: Frames) -> Inputs:
    """keras.applications' 'torch' mode: x / 255, then the ImageNet mean and std (torchvision's Normalize values)."""
    import keras

    return _f32(keras.applications.densenet.preprocess_input(frames.astype(np.float32)))


def keras_normalization(mean: tuple[float, ...], std: tuple[float, ...]) -> InputBuilder:
    """A Keras Normalization layer with these per-channel mean and std (pixel units)."""
    def build(frames: Frames) -> Inputs:
        import keras

        layer = keras.layers.Normalization(mean=list(mean), variance=[s * s for s in std])
        return _f32(layer(frames.astype(np.float32)))
    return build


def keras_rescaling(scale: float, offset: float) -> InputBuilder:
    """A Keras Rescaling layer: x * scale + offset."""
    def build(frames: Frames) -> Inputs:
        import keras

        return _f32(keras.layers.Rescaling(scale, offset)(frames.astype(np.float32)))
    return build


def cv2_imread_unit(frames: Frames) -> Inputs:
    """The tutorial that reads its images with cv2.imread (BGR) and divides by 255: the frames go through PNG files
    written by Pillow (RGB, no OpenCV involved) and are read back by cv2.imread, as that tutorial's loader does."""
    import cv2
    from PIL import Image

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, frame in enumerate(frames):
            path = Path(tmp) / f"{i}.png"
            Image.fromarray(frame, "RGB").save(path)
            out.append(cv2.imread(str(path), cv2.IMREAD_COLOR))  # (h, w, 3) uint8 BGR
    return tutorial_unit(np.stack(out))


# Every --preprocess form (value, --channel-order) with the ecosystem function that defines it: what the bundle's
# manifest must reproduce. tests/test_preprocess.py checks each on real pixels; the parity zoo uses them per model.
MEAN, STD = (120.0, 110.0, 100.0), (60.0, 55.0, 50.0)
SCALE, OFFSET = 0.004, -0.5
PRESETS: dict[str, tuple[str, str | None, InputBuilder]] = {
    "unit": ("unit", None, tutorial_unit),
    "symmetric": ("symmetric", None, mobilenet_v2),
    "imagenet": ("imagenet", None, densenet_torch),
    "caffe": ("caffe", None, resnet50_caffe),
    "mean_std": (f"mean={':'.join(map(str, MEAN))},std={':'.join(map(str, STD))}", None,
                 keras_normalization(MEAN, STD)),
    "scale_offset": (f"scale={SCALE},offset={OFFSET}", None, keras_rescaling(SCALE, OFFSET)),
    "unit_bgr": ("unit", "BGR", cv2_imread_unit),
    "none": ("none", None, raw_pixels),
}


def preset_references(frames: Frames) -> dict[str, NDArray[np.generic]]:
    """frames and, per preset, its ecosystem input; the preset's --preprocess value and channel order alongside."""
    arrays: dict[str, NDArray[np.generic]] = {"frames": frames}
    for name, (value, order, build) in PRESETS.items():
        arrays[f"{name}.x"] = build(frames)
        arrays[f"{name}.preprocess"] = np.array(value)
        arrays[f"{name}.channel_order"] = np.array(order or "")
    return arrays
