"""python -m tools.export MODEL --out BUNDLE: cut a Keras, PyTorch or ONNX classifier into a bundle for the device.

The bundle is features.tflite + head.npz + manifest.json: the feature model (input -> target layer activations A) goes
to TFLite; the layers after the target become the NumPy head that the device runs forward and backward for exact
Grad-CAM without TensorFlow or PyTorch. One front end per model format (Keras, PyTorch, ONNX, .pt2:
tools/export/formats.py) splits the model; this module writes the bundle.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from edge.explain import bundle as bundle_format
from edge.explain.bundle import FeatureModel, Manifest
from edge.explain.bundle_check import sha256_file
from tools.common import cli_support, edge_worker
from tools.export import class_names, formats, head_storage, preprocess_spec, quiet
from tools.export.front_end import ExportError, ExportOptions, FrontEndModel
from tools.export.imx500 import trunk as imx500_trunk
from tools.export.keras import feature_export

_LOGGER = logging.getLogger("tools.export")


class BundleCheckError(ExportError):
    """The written bundle does not load on a TFLite runtime (the check after writing)."""


def export(model_path: Path, options: ExportOptions, weights: Path | None = None) -> Manifest:
    """Write the bundle for model_path into options.out and return its manifest."""
    front = formats.front_end_for(model_path).load(str(model_path), weights, options)
    return write_bundle(options, front)


def write_bundle(options: ExportOptions, front: FrontEndModel) -> Manifest:
    """The bundle every front end ends in: features.tflite, head.npz, manifest.json, checked on both runtimes."""
    classes = _class_names(options.classes, front.head.num_classes)
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
        preprocess=front.preprocess,
        score=options.score,
        output_activation=front.head.output_activation,
        features=FeatureModel(dtype, in_quant, out_quant, front.flops),
        head_layers=front.head_layers,
        head_dtype=options.head_dtype,
        files={name: sha256_file(out / name) for name in (bundle_format.FEATURES, bundle_format.HEAD)},
        source=front.source,
    )
    (out / bundle_format.MANIFEST).write_text(manifest.to_json(), encoding="utf-8")
    if options.check:
        try:
            edge_worker.check_bundle(out)
        except edge_worker.WorkerError as e:
            raise BundleCheckError(str(e)) from e
    return manifest


def _class_names(given: list[str] | None, num_classes: int) -> list[str]:
    if given is None:
        return [f"class_{i}" for i in range(num_classes)]
    if len(given) != num_classes:
        raise ExportError(f"{len(given)} class names given but the model has {num_classes} outputs")
    return class_names.make_unique(given, "--classes")


def _list_layers(args: argparse.Namespace) -> list[str]:
    return formats.front_end_for(args.model).list_layers(str(args.model), args.weights, args.input_size, args.all)


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
    with cli_support.one_line_errors(args.debug, ExportError) as status, \
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
