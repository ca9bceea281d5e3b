"""The TFLite half of a bundle: model input -> target activations, float32 or full-integer int8."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from tqdm import tqdm

from edge.explain.bundle import Quantization
from edge.explain.preprocess import Preprocessor
from tools.export.front_end import ExportError

_LOGGER = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


class FeatureExportError(ExportError):
    """The feature model cannot be converted or calibrated."""


def calibration_inputs(directory: Path, preprocess: Preprocessor, limit: int) -> list[NDArray[np.float32]]:
    """Up to `limit` real images from `directory` (recursively, sorted), preprocessed as on the device."""
    if not directory.is_dir():
        raise FeatureExportError(f"{directory}: calibration directory not found")
    paths = sorted(p for p in directory.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise FeatureExportError(f"{directory}: no images ({', '.join(IMAGE_SUFFIXES)}) to calibrate int8 with")
    step = max(1, len(paths) // limit)  # spread over the folders rather than taking the first class only
    inputs = []
    for path in tqdm(paths[::step][:limit], desc="calibration images", unit="img"):
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            _LOGGER.warning("skipping unreadable calibration image %s", path)
            continue
        inputs.append(preprocess(np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), np.uint8)))
    if not inputs:
        raise FeatureExportError(f"{directory}: none of the images could be read")
    if len(inputs) < limit:
        _LOGGER.warning("%s: calibrating int8 on %d image(s), fewer than the %d asked for (--calibration-count); "
                        "ranges seen on few images may clip activations of others", directory, len(inputs), limit)
    return inputs


def convert(feature_model: Any, calibration: list[NDArray[np.float32]] | None) -> bytes:
    """TFLite flatbuffer of feature_model; with calibration inputs, full-integer int8 (int8 input and output)."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(feature_model)
    if calibration is not None:
        def representative() -> Iterator[list[NDArray[np.float32]]]:
            for x in tqdm(calibration, desc="int8 calibration", unit="img", leave=False):
                yield [x[None]]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        # Full-integer ops only: dynamic-range quantisation emits op versions tflite-runtime 2.14 rejects.
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    try:
        # Keras 3's export prints every captured variable to stdout; the tool's output is its own summary.
        with contextlib.redirect_stdout(io.StringIO()):
            return bytes(converter.convert())
    except Exception as e:  # the converter raises ConverterError and plain exceptions alike
        raise FeatureExportError(f"TFLite conversion failed: {e}") from e


def quantization_of(tflite_model: bytes) -> tuple[str, Quantization | None, Quantization | None]:
    """dtype and input/output quantisation of a converted model, read back from it by the device's TFLite runtime
    (only the details, the model is not run). Not TensorFlow's interpreter: the PyTorch and ONNX front ends would import
    TensorFlow (~11 s) for nothing."""
    from edge.explain.runtime import interpreter_class

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecation notices of the runtimes' interpreters
        interpreter = interpreter_class()[1](model_content=tflite_model)
    details = [interpreter.get_input_details()[0], interpreter.get_output_details()[0]]
    quant: list[Quantization | None] = []
    for d in details:
        if np.dtype(d["dtype"]) == np.float32:
            quant.append(None)
        else:
            scale, zero_point = d["quantization"]
            quant.append(Quantization(float(scale), int(zero_point)))
    dtype = "float32" if quant[0] is None else "int8"
    return dtype, quant[0], quant[1]
