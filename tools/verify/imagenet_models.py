"""python -m tools.verify.imagenet_models OUT: the tutorials' ImageNet networks, exported as a new user exports them.

Xception (target block14_sepconv2_act), VGG16 (block5_conv3), MobileNetV2, ResNet50 and EfficientNetB0 from
keras.applications, 1000 classes, weights=None (nothing is downloaded). Random weights alone give activations of
unrealistic size (vanishing or exploding through 50-130 layers), which would hide or exaggerate float32 rounding; so
the BatchNorm statistics are re-estimated on real photographs (one training-mode pass with momentum 0: every
BatchNorm then normalises what it actually sees), and VGG16, which has none, gets each layer's kernel scaled to unit
output standard deviation on the same images (LSUV, Mishkin & Matas 2016). --small builds them at reduced input
sizes for CI (the weights, hence the conversion cost, stay full size).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from tools.export.exporter import export
from tools.export.front_end import ExportOptions
from tools.keras_support import model_io

REPO = Path(__file__).resolve().parents[2]
PHOTOS = [REPO / "samples", REPO / "tests" / "data" / "fruits360-mini"]  # real photographs shipped with the repo
CALIBRATION_IMAGES = 16
LOGIT_STD = 2.0  # the classifier's logits scaled to this spread: a softmax neither flat nor one-hot


@dataclass(frozen=True)
class ImagenetModel:
    name: str
    builder: str  # keras.applications.<builder>
    size: int  # the tutorials' input size
    small: int  # the CI size (the smallest each architecture accepts with a map larger than 1x1)
    preprocess: str  # tools.export --preprocess, as keras.applications.<module>.preprocess_input does it
    target: str | None = None  # None: the export's default


MODELS = [
    ImagenetModel("xception", "Xception", 299, 71, "symmetric", "block14_sepconv2_act"),
    ImagenetModel("vgg16", "VGG16", 224, 64, "caffe", "block5_conv3"),
    ImagenetModel("mobilenetv2", "MobileNetV2", 224, 64, "symmetric"),
    ImagenetModel("resnet50", "ResNet50", 224, 64, "caffe"),
    ImagenetModel("efficientnetb0", "EfficientNetB0", 224, 64, "none"),  # rescales and normalises inside
]


def photos(n: int, size: int) -> np.ndarray:
    """(n, size, size, 3) uint8 RGB: the repository's real photographs, resized."""
    paths = sorted(p for d in PHOTOS for p in d.rglob("*.jpg"))
    paths = paths[:: max(1, len(paths) // n)][:n]
    return np.stack([cv2.resize(cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB), (size, size),
                                interpolation=cv2.INTER_AREA) for p in paths])


def model_input(images: np.ndarray, preprocess: str) -> np.ndarray:
    """The model's input the way its keras.applications module builds it (not edge's Preprocessor)."""
    import keras

    x = images.astype(np.float32)
    if preprocess == "symmetric":
        return np.asarray(keras.applications.mobilenet_v2.preprocess_input(x.copy()))
    if preprocess == "caffe":
        return np.asarray(keras.applications.resnet50.preprocess_input(x.copy()))
    return x


def _calibrate_batchnorm(model: Any, x: np.ndarray) -> None:
    """Every BatchNorm's moving statistics := the statistics of what it sees on x (dropout off for the pass)."""
    saved = {}
    for layer in model.layers:
        if type(layer).__name__ == "BatchNormalization":
            saved[layer.name] = layer.momentum
            layer.momentum = 0.0
        elif type(layer).__name__ == "Dropout":
            saved[layer.name] = layer.rate
            layer.rate = 0.0
    model(x, training=True)
    for layer in model.layers:
        if layer.name in saved:
            setattr(layer, "momentum" if type(layer).__name__ == "BatchNormalization" else "rate", saved[layer.name])


def _lsuv(model: Any, x: np.ndarray) -> None:
    """A plain chain (VGG16): scale each kernel so that its layer's output has unit standard deviation on x."""
    h = x
    kernels = [layer for layer in model.layers if hasattr(layer, "kernel")]
    for layer in model.layers[1:]:
        if hasattr(layer, "kernel"):
            target = LOGIT_STD if layer is kernels[-1] else 1.0
            pre = layer.activation
            layer.activation = lambda v: v  # measure the pre-activation
            std = float(np.std(np.asarray(layer(h))))
            layer.activation = pre
            layer.kernel.assign(layer.kernel * (target / max(std, 1e-12)))
        h = layer(h)


def _scale_logits(model: Any, x: np.ndarray) -> None:
    """The last Dense's kernel scaled so that its logits have LOGIT_STD on x."""
    import keras

    dense = [layer for layer in model.layers if type(layer).__name__ == "Dense"][-1]
    features = np.asarray(keras.Model(model.inputs, dense.input)(x))
    logits = features @ np.asarray(dense.kernel)
    dense.kernel.assign(dense.kernel * (LOGIT_STD / max(float(np.std(logits)), 1e-12)))


SEED = 0  # the global seed each network is built under (keras.applications has no initializer seeds)


def make_model(spec: ImagenetModel, size: int) -> Any:
    """keras.applications.<spec.builder>(weights=None), seeded, calibrated on real photographs: the same weights in
    every process on every clone."""
    import keras

    keras.utils.set_random_seed(SEED)
    model = getattr(keras.applications, spec.builder)(input_shape=(size, size, 3), weights=None, classes=1000)
    x = model_input(photos(CALIBRATION_IMAGES, size), spec.preprocess)
    if any(type(layer).__name__ == "BatchNormalization" for layer in model.layers):
        _calibrate_batchnorm(model, x)
        _scale_logits(model, x)
    else:
        _lsuv(model, x)
    return model


def build_model(spec: ImagenetModel, size: int, path: Path) -> Path:
    """make_model's network saved to path, unless already there."""
    if not path.exists():
        model = make_model(spec, size)
        path.parent.mkdir(parents=True, exist_ok=True)
        model.save(path)
    return path


def build(spec: ImagenetModel, out: Path, small: bool, head_dtype: str = "float32") -> tuple[Path, Path]:
    """(model file, bundle directory) under out/, built and exported unless already there."""
    size = spec.small if small else spec.size
    model = build_model(spec, size, out / "models" / f"{spec.name}-{size}.keras")
    suffix = "" if head_dtype == "float32" else f"-{head_dtype}"
    bundle = out / "bundles" / f"{spec.name}-{size}{suffix}"
    if not (bundle / "manifest.json").exists():
        export(model, ExportOptions(out=bundle, target_layer=spec.target, preprocess=spec.preprocess,
                                    check=False, head_dtype=head_dtype))
    return model, bundle


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.verify.imagenet_models", description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--small", action="store_true", help="reduced input sizes (CI)")
    p.add_argument("--only", help="comma-separated: " + ", ".join(m.name for m in MODELS))
    p.add_argument("--head-dtype", default="float32", help="also export with this head storage")
    p.add_argument("--verify", type=Path, metavar="IMAGES", help="then run tools.verify on each with these images, "
                   "reports to OUT/reports/NAME.json (one TensorFlow start-up for all)")
    p.add_argument("--limit", type=int, default=4, help="with --verify: images per model (default 4)")
    args = p.parse_args(argv)
    model_io.quiet_tensorflow()
    wanted = set(args.only.split(",")) if args.only else {m.name for m in MODELS}
    for spec in tqdm([m for m in MODELS if m.name in wanted], desc="ImageNet models", unit="model"):
        model, bundle = build(spec, args.out, args.small, args.head_dtype)
        print(f"{spec.name}: {model} -> {bundle}")
        if args.verify is not None:
            from tools.verify.verifier import verify

            report = verify(bundle, model, None, args.verify, args.limit, None)
            (args.out / "reports").mkdir(parents=True, exist_ok=True)
            (args.out / "reports" / f"{bundle.name}.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
