"""python -m tools.export MODEL --out BUNDLE: cut a Keras, PyTorch or ONNX classifier into a bundle for the device.

The bundle is features.tflite + head.npz + manifest.json: the feature model (input -> target layer activations A) goes
to TFLite; the layers after the target become the NumPy head that the device runs forward and backward for exact
Grad-CAM without TensorFlow or PyTorch.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.explain import bundle as bundle_format
from edge.explain.bundle import FeatureModel, Manifest, Preprocess
from edge.explain.preprocess import Preprocessor
from tools.common import cli_support, edge_worker
from tools.export import class_names, head_storage, preprocess_spec, quiet
from tools.export.front_end import FrontEndModel
from tools.export.imx500 import trunk as imx500_trunk
from tools.export.imx500.toolchain import ToolchainError
from tools.export.keras import feature_export, feature_fold
from tools.export.keras import layers as keras_layers
from tools.export.keras.head_builder import HeadExportError, build_head, conv_classifier_note
from tools.export.onnx import model_file as onnx_model_file
from tools.export.torch import model_spec, pt2_file
from tools.keras_support import keras_graph, model_io

_LOGGER = logging.getLogger("tools.export")


class ExportError(Exception):
    """The model cannot be exported as asked; the message says why and what to do."""


@dataclass
class ExportOptions:
    out: Path
    target_layer: str | None = None
    score: str = "logit"
    classes: list[str] | None = None
    preprocess: str | None = None  # None: 'none' if the model rescales its input itself, else 'unit'
    channel_order: str | None = None
    resize: str = "bilinear"
    quantize: str | None = None  # None or "int8"
    calibration: Path | None = None
    calibration_count: int = 200
    check: bool = True
    head_dtype: str = "float32"  # storage of the head's Dense kernels (tools/export/head_storage.py)
    fold: bool = True  # fold BatchNorms after ReLU convolutions into them (tools/export/keras/feature_fold.py)
    input_size: tuple[int, int] = (224, 224)  # PyTorch models: the (height, width) they are traced and converted at


def export(model_path: Path, options: ExportOptions, weights: Path | None = None) -> Manifest:
    """Write the bundle for model_path into options.out and return its manifest."""
    if model_spec.is_torch_spec(str(model_path)):
        return _export_torch(str(model_path), options, weights)
    if onnx_model_file.is_onnx_file(model_path):
        return _export_onnx(model_path, options, weights)
    if pt2_file.is_pt2_file(model_path):
        return _export_pt2(model_path, options, weights)
    model_spec.refuse_malformed(str(model_path))
    model = model_io.load_model(model_path, weights)
    target = options.target_layer or keras_graph.default_target(model)
    chain = keras_graph.chain_to_output(model, target)
    if len(chain.target_tensor.shape) != 4:
        raise ExportError(f"target layer {target!r} gives shape {tuple(chain.target_tensor.shape)}; "
                          "it must be a 4-D feature map (see --list-layers)")
    feature_shape = tuple(int(v) for v in chain.target_tensor.shape[1:])
    try:
        head = build_head(chain.layers, feature_shape)  # type: ignore[arg-type]
    except HeadExportError as e:
        raise ExportError(f"{e}{_classifier_before(model, target)}") from e
    classes = _class_names(options.classes, head.num_classes)
    input_shape = tuple(int(v) for v in model.inputs[0].shape[1:])
    if len(input_shape) != 3:
        raise ExportError(f"model input shape {input_shape} is not (height, width, channels)")
    preprocess = _preprocess(model, options, input_shape[2])
    if options.score == "probability" and head.output_activation == "none":
        _LOGGER.warning("the model has no softmax/sigmoid output; score=probability uses a softmax of its outputs")

    import keras

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
    tflite = feature_export.convert(feature_model, calibration)

    front = FrontEndModel(tflite, head, input_shape, feature_shape, target,  # type: ignore[arg-type]
                          tuple(layer.name for layer in chain.layers), keras_graph.flops(chain.target_tensor),
                          _source(model_path, weights))
    return write_bundle(options, front, preprocess, classes)


def write_bundle(options: ExportOptions, front: FrontEndModel, preprocess: Preprocess, classes: list[str]) -> Manifest:
    """The bundle every front end ends in: features.tflite, head.npz, manifest.json, checked on both runtimes."""
    dtype, in_quant, out_quant = feature_export.quantization_of(front.tflite)
    out = options.out
    out.mkdir(parents=True, exist_ok=True)
    (out / bundle_format.FEATURES).write_bytes(front.tflite)
    head_storage.store_as(front.head, options.head_dtype).save(out / bundle_format.HEAD)
    manifest = Manifest(
        class_names=tuple(classes),
        input_shape=front.input_shape,
        feature_shape=front.feature_shape,
        target_layer=front.target,
        preprocess=preprocess,
        score=options.score,
        output_activation=front.head.output_activation,
        features=FeatureModel(dtype, in_quant, out_quant, front.flops),
        head_layers=front.head_layers,
        head_dtype=options.head_dtype,
        files={name: bundle_format.sha256_file(out / name) for name in (bundle_format.FEATURES, bundle_format.HEAD)},
        source=front.source,
    )
    (out / bundle_format.MANIFEST).write_text(manifest.to_json(), encoding="utf-8")
    if options.check:
        edge_worker.check_bundle(out)
    return manifest


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


def _export_torch(model: str, options: ExportOptions, weights: Path | None) -> Manifest:
    """The PyTorch front end (tools/export/torch/) into the same bundle writer."""
    if options.quantize:
        raise ExportError("--quantize int8 is not available for PyTorch models yet; export float features")
    return _write_torch_style(options, model_spec.front_end().load(model, weights, options.target_layer,
                                                                    options.input_size))


def _export_onnx(model_path: Path, options: ExportOptions, weights: Path | None) -> Manifest:
    """The ONNX front end (tools/export/onnx/: onnx2torch, then the PyTorch front end's conversion) into the writer."""
    _refuse_weights_and_quantize("an .onnx model", weights, options)
    return _write_torch_style(options, onnx_model_file.front_end().load(model_path, options.target_layer,
                                                                         options.input_size))


def _export_pt2(model_path: Path, options: ExportOptions, weights: Path | None) -> Manifest:
    """A torch.export program (tools/export/torch/pt2_front_end.py: split by nn_module_stack, ATen head) into the
    writer."""
    _refuse_weights_and_quantize("a .pt2 program", weights, options)
    return _write_torch_style(options, pt2_file.front_end().load(model_path, options.target_layer,
                                                                 options.input_size))


def _refuse_weights_and_quantize(what: str, weights: Path | None, options: ExportOptions) -> None:
    if weights is not None or options.quantize:
        raise ExportError(f"{what} holds its weights and exports float features: drop --weights/--quantize")


def _write_torch_style(options: ExportOptions, front: Any) -> Manifest:
    """A PyTorch-family front end's model into the bundle writer: class names, and torchvision's 'imagenet'
    preprocessing unless --preprocess says otherwise."""
    classes = _class_names(options.classes, front.head.num_classes)
    if options.preprocess is None:
        _LOGGER.info("--preprocess not given: assuming 'imagenet' (torchvision's mean/std on RGB / 255)")
    preprocess = _parse_preprocess(options.preprocess or "imagenet", options, front.input_shape[2])
    return write_bundle(options, front, preprocess, classes)


def _class_names(given: list[str] | None, num_classes: int) -> list[str]:
    if given is None:
        return [f"class_{i}" for i in range(num_classes)]
    if len(given) != num_classes:
        raise ExportError(f"{len(given)} class names given but the model has {num_classes} outputs")
    return class_names.make_unique(given, "--classes")


def _preprocess(model: Any, options: ExportOptions, channels: int) -> Preprocess:
    spec = options.preprocess
    if spec is None:
        rescales = any(type(layer).__name__ in ("Rescaling", "Normalization") for layer in model.layers[:3])
        spec = "none" if rescales else "unit"
        _LOGGER.info("--preprocess not given: assuming %r (%s)", spec,
                     "the model rescales its input" if rescales else "pixel / 255")
    return _parse_preprocess(spec, options, channels)


def _parse_preprocess(spec: str, options: ExportOptions, channels: int) -> Preprocess:
    try:
        return preprocess_spec.parse(spec, options.channel_order, channels, options.resize)
    except preprocess_spec.PreprocessSpecError as e:
        raise ExportError(str(e)) from e


def _source(model_path: Path, weights: Path | None) -> dict[str, str]:
    import keras
    import tensorflow as tf

    source = {
        "model": model_path.name,
        "model_sha256": bundle_format.sha256_file(model_path),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "exported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    if weights is not None:
        source["weights"] = weights.name
        source["weights_sha256"] = bundle_format.sha256_file(weights)
    return source


def _list_layers(args: argparse.Namespace) -> list[str]:
    """--list-layers for either front end."""
    if model_spec.is_torch_spec(str(args.model)):
        return list(model_spec.front_end().list_layers(str(args.model), args.weights, args.input_size, args.all))
    if onnx_model_file.is_onnx_file(args.model):
        return list(onnx_model_file.front_end().list_layers(args.model, args.input_size, args.all))
    if pt2_file.is_pt2_file(args.model):
        return list(pt2_file.front_end().list_layers(args.model, args.input_size, args.all))
    model_spec.refuse_malformed(str(args.model))
    return keras_layers.list_layers(args.model, args.weights, args.all)


def _input_size(text: str) -> tuple[int, int]:
    try:
        sizes = [int(v) for v in text.split(",")]
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{text!r} is not H or H,W in pixels") from e
    if len(sizes) not in (1, 2) or min(sizes) < 8:
        raise argparse.ArgumentTypeError(f"{text!r}: give H or H,W, each at least 8 pixels")
    return (sizes[0], sizes[-1])


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tools.export", description=__doc__.splitlines()[0])
    p.add_argument("model", type=Path, help=".keras, legacy .h5, tf.keras architecture .json (--weights), a "
                   "PyTorch model (package.module:callable or file.py:callable returning an nn.Module, or a .pt2 "
                   "saved by torch.export.save) or an .onnx")
    p.add_argument("--weights", type=Path, help="weights .h5 for an architecture JSON; a state_dict .pth for PyTorch")
    p.add_argument("--input-size", type=_input_size, default=(224, 224),
                   help="PyTorch: H[,W] the model is traced and converted at (default 224); ONNX: "
                   "the size used only where the graph's input height/width are not fixed")
    p.add_argument("--out", type=Path, help="bundle directory to write")
    p.add_argument("--target-layer", help="layer whose activations A are explained (default: the last 4-D layer "
                   "before the first Flatten/global pooling): a Keras layer name, a PyTorch module or traced node, "
                   "an ONNX tensor or node name (--list-layers shows them)")
    p.add_argument("--list-layers", action="store_true", help="print the usable target layers (* marks the "
                   "default) and the others summed up by reason, then exit")
    p.add_argument("--all", action="store_true", help="with --list-layers: every 4-D layer, each with its reason")
    p.add_argument("--score", choices=bundle_format.SCORES, default="logit",
                   help="differentiate the class logit (default, as in the Grad-CAM paper) or its probability")
    p.add_argument("--classes", type=lambda s: [c.strip() for c in s.split(",")], help="class names, comma separated")
    p.add_argument("--classes-file", type=Path, help="class names: one per line, ImageNet synset lines "
                   "('n01440764 tench, Tinca tinca'), or Keras's imagenet_class_index.json")
    p.add_argument("--preprocess", help=preprocess_spec.HELP + " (default: Keras: none if the model starts with a "
                   "Rescaling layer, else unit; PyTorch and ONNX: imagenet)")
    p.add_argument("--channel-order", choices=bundle_format.CHANNEL_ORDERS,
                   help="channel order the model was trained on (the fruit tutorial used cv2.imread: BGR)")
    p.add_argument("--resize", choices=bundle_format.RESIZE_MODES, default="bilinear",
                   help="how the device resizes a frame to the model's input (default bilinear)")
    p.add_argument("--quantize", choices=["int8"], help="full-integer feature model (the head stays float)")
    p.add_argument("--calibration", type=Path, help="directory of real images for int8 calibration")
    p.add_argument("--calibration-count", type=int, default=200,
                   help="with --quantize int8: calibrate on at most this many images of --calibration (default 200; "
                   "a warning when it has fewer)")
    p.add_argument("--head-dtype", choices=bundle_format.HEAD_DTYPES, default="float32",
                   help="storage of the head's Dense kernels (computed in float32 either way; float16 halves "
                   "head.npz, tools.verify reports what it costs)")
    p.add_argument("--no-check", action="store_true", help="skip loading the bundle with both TFLite runtimes")
    p.add_argument("--no-fold", action="store_true", help="keep BatchNorms after ReLU convolutions as they are "
                   "(by default they are folded into the convolution: same features, less work per frame)")
    imx500_trunk.add_arguments(p)
    cli_support.add_common(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    cli_support.setup_logging(args.debug)
    with cli_support.one_line_errors(args.debug, ExportError, HeadExportError, model_io.ModelLoadError,
                                     keras_graph.GraphError, feature_export.FeatureExportError,
                                     edge_worker.WorkerError, preprocess_spec.PreprocessSpecError,
                                     class_names.ClassNamesError, model_spec.TorchExportError,
                                     imx500_trunk.Imx500ExportError, ToolchainError) as status, \
            quiet.quiet_unless(args.debug):
        if args.list_layers:
            print("\n".join(_list_layers(args)))
            return 0
        if args.out is None:
            raise ExportError("--out BUNDLE_DIR is required (or use --list-layers)")
        if args.classes and args.classes_file:
            raise ExportError("give --classes or --classes-file, not both")
        imx500_trunk.refuse_early(args)
        options = ExportOptions(
            out=args.out, target_layer=args.target_layer, score=args.score,
            classes=class_names.read_class_names(args.classes_file) if args.classes_file else args.classes,
            preprocess=args.preprocess, channel_order=args.channel_order, resize=args.resize,
            quantize=args.quantize, calibration=args.calibration, calibration_count=args.calibration_count,
            check=not args.no_check, fold=not args.no_fold, head_dtype=args.head_dtype, input_size=args.input_size,
        )
        m = export(args.model, options, args.weights)
        head_mb = (args.out / bundle_format.HEAD).stat().st_size / 1e6
        print(f"wrote {args.out}: {m.input_shape} -> {m.target_layer} {m.feature_shape} ({m.features.dtype}, "
              f"{m.features.flops / 1e6:.1f} MFLOPs) -> head {' > '.join(m.head_layers)} ({m.head_dtype}, "
              f"{head_mb:.1f} MB) -> {class_names.summary(m.class_names)}")
        if args.trunk == "imx500":
            m = imx500_trunk.add_trunk(args.model, args.weights, m, args.out, args.calibration,
                                       args.calibration_count, args.imx500_venv)
            print(imx500_trunk.summary(m.imx500))  # type: ignore[arg-type]
    return status.code
