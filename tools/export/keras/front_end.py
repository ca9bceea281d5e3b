"""Keras model file (.keras, legacy .h5, architecture .json with --weights) -> FrontEndModel: the graph cut at the
target layer, the head built from the Keras layers after it, the layers before it (BatchNorms folded) to TFLite."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from edge.explain.bundle import Preprocess
from edge.explain.bundle_check import sha256_file
from edge.explain.preprocess import Preprocessor
from tools.export import preprocess_spec
from tools.export.front_end import ExportError, ExportOptions, FrontEndModel
from tools.export.keras import feature_export, feature_fold
from tools.export.keras import layers as keras_layers
from tools.export.keras.head_builder import HeadExportError, build_head, conv_classifier_note
from tools.export.torch import model_spec
from tools.keras_support import keras_graph, model_io

_LOGGER = logging.getLogger("tools.export")


class KerasModelError(ExportError):
    """The Keras model cannot be read, or its graph cannot be cut at the target layer."""


@contextmanager
def _one_kind_of_error() -> Iterator[None]:
    """tools.keras_support's errors (a shared layer, below tools.export) as this front end's ExportError."""
    try:
        yield
    except (model_io.ModelLoadError, keras_graph.GraphError) as e:
        raise KerasModelError(str(e)) from e


def load(model: str, weights: Path | None, options: ExportOptions) -> FrontEndModel:
    model_spec.refuse_malformed(model)
    with _one_kind_of_error():
        return _load(Path(model), weights, options)


def _load(model_path: Path, weights: Path | None, options: ExportOptions) -> FrontEndModel:
    model = model_io.load_model(model_path, weights)
    target = options.target_layer or keras_graph.default_target(model)
    chain = keras_graph.chain_to_output(model, target)
    if len(chain.target_tensor.shape) != 4:
        raise KerasModelError(f"target layer {target!r} gives shape {tuple(chain.target_tensor.shape)}; "
                              "it must be a 4-D feature map (see --list-layers)")
    feature_shape = tuple(int(v) for v in chain.target_tensor.shape[1:])
    try:
        head = build_head(chain.layers, feature_shape)  # type: ignore[arg-type]
    except HeadExportError as e:
        raise HeadExportError(f"{e}{_classifier_before(model, target)}") from e
    input_shape = tuple(int(v) for v in model.inputs[0].shape[1:])
    if len(input_shape) != 3:
        raise KerasModelError(f"model input shape {input_shape} is not (height, width, channels)")
    preprocess = _preprocess(model, options, input_shape[2])
    if options.score == "probability" and head.output_activation == "none":
        _LOGGER.warning("the model has no softmax/sigmoid output; score=probability uses a softmax of its outputs")
    feature_model = keras.Model(model.inputs, chain.target_tensor, name="features")
    if options.fold:
        feature_model = feature_fold.fold_batchnorms(model.inputs[0], chain.target_tensor) or feature_model
    calibration = None
    if options.quantize == "int8":
        if options.calibration is None:
            raise ExportError("--quantize int8 needs --calibration IMAGE_DIR (real images to calibrate with)")
        calibration = feature_export.calibration_inputs(
            options.calibration, Preprocessor(preprocess, input_shape), options.calibration_count
        )
    return FrontEndModel(feature_export.convert(feature_model, calibration), head, input_shape,
                         feature_shape, target, tuple(layer.name for layer in chain.layers),  # type: ignore[arg-type]
                         keras_graph.flops(chain.target_tensor), _source(model_path, weights), preprocess)


def list_layers(model: str, weights: Path | None, input_size: tuple[int, int], show_all: bool) -> list[str]:
    model_spec.refuse_malformed(model)
    with _one_kind_of_error():
        return keras_layers.list_layers(Path(model), weights, show_all)


def _classifier_before(model: Any, target: str) -> str:
    """When the classifier is a 1x1 Conv2D before the target (SqueezeNet), the head has no Dense: name that layer."""
    names = [layer.name for layer in model.layers]
    outputs = int(model.outputs[0].shape[-1])
    for layer in reversed(model.layers[: names.index(target) + 1]):
        if type(layer).__name__ == "Conv2D":
            config = layer.get_config()
            if tuple(config["kernel_size"]) != (1, 1) or config["filters"] != outputs:
                return ""
            return (f" (the classifier here is {layer.name!r}, a 1x1 Conv2D, at or before target {target!r}"
                    f"{conv_classifier_note(layer)})")
    return ""


def _preprocess(model: Any, options: ExportOptions, channels: int) -> Preprocess:
    spec = options.preprocess
    if spec is None:
        rescales = any(type(layer).__name__ in ("Rescaling", "Normalization") for layer in model.layers[:3])
        spec = "none" if rescales else "unit"
        _LOGGER.info("--preprocess not given: assuming %r (%s)", spec,
                     "the model rescales its input" if rescales else "pixel / 255")
    return preprocess_spec.parse(spec, options.channel_order, channels, options.resize)


def _source(model_path: Path, weights: Path | None) -> dict[str, str]:
    source = {
        "model": model_path.name,
        "model_sha256": sha256_file(model_path),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "exported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    if weights is not None:
        source["weights"] = weights.name
        source["weights_sha256"] = sha256_file(weights)
    return source
