"""python -m tools.verify.testmodels OUT: the model zoo the parity tests and benchmarks use, with TensorFlow references.

For each case it builds a small seeded Keras model in one of the forms users have (Keras 3 .keras, legacy tf.keras
.h5, the fruit tutorial's architecture JSON + weights), exports it with tools.export, and records tf.GradientTape
Grad-CAM for a few inputs and both scores. The tests then run the edge side in their own TensorFlow-free process
and compare. Untrained weights are fine for parity; BatchNorm statistics are randomised so that folding them matters.
Every model is seeded where it is built (Source.make): the same weights on every machine and clone.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from tools.export.exporter import export
from tools.export.front_end import ExportOptions
from tools.keras_support import architectures, model_io
from tools.verify import ecosystem, zoo_models
from tools.verify.ecosystem import InputBuilder
from tools.verify.tf_reference import GradCamReference

SCORES = ("logit", "probability")
N_INPUTS = 3


KERAS_SEED = 0  # the global seed every Keras case is built under (keras.applications has no initializer seeds)
BATCHNORM_SEED = 7  # the Keras 3 cases' BatchNorm statistics


@dataclass(frozen=True)
class Source:
    """A case's model: `make` builds it in memory, seeded (the same weights in every process on every clone), and
    write() saves it as `filename` says: NAME.keras (Keras 3), NAME.h5 (legacy tf.keras), NAME.json (tf.keras
    architecture JSON, its weights in NAME.h5 beside it)."""

    make: Callable[[], Any]
    filename: str

    def write(self, out: Path) -> tuple[Path, Path | None]:
        """(model file, weights file or None) under out/, written unless already there."""
        path = out / self.filename
        weights = path.with_suffix(".h5") if path.suffix == ".json" else None
        if not path.exists():
            model = self.make()
            if weights is not None:
                path.write_text(model.to_json(), encoding="utf-8")
                model.save_weights(str(weights))
            elif path.suffix == ".h5":
                model.save(str(path), save_format="h5")
            else:
                model.save(path)
        return path, weights


@dataclass
class Case:
    name: str
    source: Source
    target: str | None = None
    quantize: bool = False
    classes: list[str] | None = None
    preprocess: str | None = None  # --preprocess (None: the exporter's default)
    channel_order: str | None = None  # --channel-order
    inputs: InputBuilder = ecosystem.tutorial_unit  # how the model's own ecosystem makes its input from the frames


def smooth_images(n: int, size: tuple[int, int], seed: int) -> np.ndarray:
    """(n, h, w, 3) uint8: low-frequency colour blobs, more like photographs than white noise."""
    import cv2

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        small = rng.uniform(0, 255, (6, 6, 3)).astype(np.float32)
        out.append(np.clip(cv2.resize(small, size[::-1], interpolation=cv2.INTER_CUBIC), 0, 255).astype(np.uint8))
    return np.stack(out)


def _randomise_batchnorm(model: Any, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if type(layer).__name__ == "BatchNormalization":
            n = layer.get_weights()[0].shape[0]
            layer.set_weights([
                rng.uniform(0.5, 1.5, n), rng.normal(0, 0.2, n), rng.normal(0, 0.2, n), rng.uniform(0.5, 2.0, n)
            ])


def _keras3(builder: Callable[[], Any], filename: str) -> Source:
    def make() -> Any:
        import keras

        keras.utils.set_random_seed(KERAS_SEED)
        model = builder()
        _randomise_batchnorm(model, BATCHNORM_SEED)
        return model
    return Source(make, filename)


def _dense_bn_dropout() -> Any:
    """A Flatten head with Dropout and BatchNormalization between its Dense layers."""
    import keras

    init = keras.initializers.GlorotUniform(seed=3)
    return keras.Sequential([
        keras.Input((48, 48, 3)),
        keras.layers.Conv2D(16, 3, activation="relu", kernel_initializer=init, name="conv1"),
        keras.layers.MaxPooling2D(2, name="pool1"),
        keras.layers.Conv2D(32, 3, activation="relu", kernel_initializer=init, name="conv2"),
        keras.layers.BatchNormalization(name="bn2"),
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dense(64, activation="relu", kernel_initializer=init, name="dense1"),
        keras.layers.BatchNormalization(name="bn_dense1"),
        keras.layers.Dropout(0.5, name="dropout1"),
        keras.layers.Dense(32, kernel_initializer=init, name="dense2"),
        keras.layers.BatchNormalization(name="bn_dense2"),
        keras.layers.Activation("relu", name="relu2"),
        keras.layers.Dropout(0.3, name="dropout2"),
        keras.layers.Dense(4, activation="softmax", kernel_initializer=init, name="predictions"),
    ])


def _tf_keras_fruit() -> Any:
    """The fruit CNN as the tutorial wrote it, in tf.keras 2 (the tf-keras package), its unseeded initializers
    seeded globally before any layer exists."""
    import tf_keras

    tf_keras.utils.set_random_seed(5)
    layers: list[Any] = [tf_keras.Input((100, 100, 3))]
    for filters in (32, 32, 64, 128):
        layers += [tf_keras.layers.Conv2D(filters, 3, activation="relu"), tf_keras.layers.BatchNormalization(),
                   tf_keras.layers.MaxPooling2D(2)]
    layers += [tf_keras.layers.Flatten(), tf_keras.layers.Dense(128, activation="relu"),
               tf_keras.layers.Dense(3, activation="softmax")]
    model = tf_keras.Sequential(layers)
    _randomise_batchnorm(model, 11)
    return model


def _mobilenet_top() -> Any:
    import keras

    return keras.applications.MobileNetV2(input_shape=(64, 64, 3), alpha=0.35, weights=None, classes=5)


FRUITS = ["Apfel", "Orange", "Tomate"]
_fruit = _keras3(lambda: architectures.fruit_cnn(seed=1), "fruit.keras")
CASES = [
    # the tutorial's target (last BatchNorm, the last MaxPooling2D in the head) and the default (last MaxPooling2D)
    Case("fruit_bn", _fruit, target="bn4", classes=FRUITS),
    Case("fruit_pool", _fruit, classes=FRUITS),
    # the last convolution, the usual Grad-CAM choice: its BatchNorm runs in the head, before the max-pool
    Case("fruit_conv4", _fruit, target="conv4", classes=FRUITS, preprocess=f"scale={ecosystem.SCALE},offset="
         f"{ecosystem.OFFSET}", inputs=ecosystem.keras_rescaling(ecosystem.SCALE, ecosystem.OFFSET)),
    Case("fruit_int8", _fruit, target="bn4", quantize=True, classes=FRUITS),
    # another network of the same shape: what an int8 comparison must tell apart from the float model
    Case("fruit_other", _keras3(lambda: architectures.fruit_cnn(seed=2), "fruit_other.keras"), target="bn4",
         classes=FRUITS),
    Case("mobilenet_gap", _keras3(lambda: architectures.mobilenetv2_gap(4, 64, seed=KERAS_SEED),
                                  "mobilenet_gap.keras"),
         preprocess="symmetric", inputs=ecosystem.mobilenet_v2),  # MobileNetV2's own preprocess_input
    Case("mobilenet_top", _keras3(_mobilenet_top, "mobilenet_top.keras"), preprocess="symmetric",
         inputs=ecosystem.mobilenet_v2),
    Case("dense_bn_dropout", _keras3(_dense_bn_dropout, "dense_bn_dropout.keras"),
         preprocess=ecosystem.PRESETS["mean_std"][0], inputs=ecosystem.PRESETS["mean_std"][2]),
    Case("legacy_h5", Source(_tf_keras_fruit, "legacy_fruit.h5"), target="batch_normalization_3"),
    # the tutorial that loads its images with cv2.imread: BGR
    Case("json_weights", Source(_tf_keras_fruit, "model_convnet.json"), channel_order="BGR",
         inputs=ecosystem.cv2_imread_unit),
    Case("sigmoid_same_max", _keras3(zoo_models.sigmoid_same_max, "sigmoid_same_max.keras"), target="conv2",
         inputs=ecosystem.raw_pixels),  # preprocess none: the model has a Rescaling layer
    Case("same_avg_gmp", _keras3(zoo_models.same_avg_gmp, "same_avg_gmp.keras"), target="conv2",
         preprocess="imagenet", inputs=ecosystem.densenet_torch),
    # caffe (BGR, mean subtraction: inputs of +-150) on a head without Grad-CAM++'s ill-conditioned alphas
    Case("gmp_linear", _keras3(zoo_models.gmp_linear, "gmp_linear.keras"), target="conv2", preprocess="caffe",
         inputs=ecosystem.resnet50_caffe),
    Case("gap_hardswish_silu", _keras3(zoo_models.gap_hardswish_silu, "gap_hardswish_silu.keras"), target="conv2"),
    # CAM and Grad-CAM maps negative in every cell: normalised heatmaps all zeros, only the raw maps compare
    Case("gap_negative", _keras3(zoo_models.gap_negative, "gap_negative.keras"), target="conv2"),
]


def build_case(case: Case, out: Path) -> None:
    """Model file(s), bundle and reference .npz for one case under out/."""
    models_dir, bundle = out / "models", out / "bundles" / case.name
    models_dir.mkdir(parents=True, exist_ok=True)
    model_path, weights = case.source.write(models_dir)
    model = model_io.load_model(model_path, weights)
    size = tuple(int(v) for v in model.inputs[0].shape[1:3])
    frames = smooth_images(N_INPUTS, size, seed=len(case.name))  # type: ignore[arg-type]
    calibration = None
    if case.quantize:
        calibration = out / "calibration"
        _write_images(calibration, smooth_images(24, size, seed=99))  # type: ignore[arg-type]
    options = ExportOptions(out=bundle, target_layer=case.target, classes=case.classes, check=False,
                            quantize="int8" if case.quantize else None, calibration=calibration,
                            preprocess=case.preprocess, channel_order=case.channel_order)
    manifest = export(model_path, options, weights)
    x = case.inputs(frames)  # (N, h_in, w_in, c) float32, made as the model's ecosystem makes it
    reference = GradCamReference(model, manifest.target_layer)
    arrays: dict[str, np.ndarray] = {"frames": frames, "x": x}
    for score in SCORES:
        refs = [reference(xi, score) for xi in x]
        arrays[f"{score}_probabilities"] = np.stack([r.probabilities for r in refs])
        arrays[f"{score}_class_index"] = np.array([r.class_index for r in refs])
        arrays[f"{score}_cam_raw"] = np.stack([r.cam_raw for r in refs])
        arrays[f"{score}_gradient"] = np.stack([r.gradient for r in refs])
        arrays[f"{score}_activations"] = np.stack([r.activations for r in refs])
        for method in refs[0].methods:  # every CAM method's TensorFlow reference, for tests/test_cam_methods.py
            arrays[f"{score}_method_{method}"] = np.stack([r.methods[method] for r in refs])
    (out / "refs").mkdir(exist_ok=True)
    np.savez(out / "refs" / f"{case.name}.npz", **arrays)


def build_presets(out: Path) -> None:
    """out/refs/presets.npz: real photographs (samples/, decoded by Pillow) and every preset's ecosystem input."""
    from PIL import Image

    samples = sorted((Path(__file__).resolve().parents[2] / "samples").glob("*.jpg"))[:3]
    frames = np.stack([np.asarray(Image.open(p).convert("RGB"))[:96, :128] for p in samples])  # (3, 96, 128, 3)
    (out / "refs").mkdir(parents=True, exist_ok=True)
    np.savez(out / "refs" / "presets.npz", **ecosystem.preset_references(frames))


def _write_images(directory: Path, images: np.ndarray) -> None:
    import cv2

    directory.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        cv2.imwrite(str(directory / f"calib_{i:03d}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.verify.testmodels", description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--only", help="comma-separated case names (default: all): " + ", ".join(c.name for c in CASES))
    args = p.parse_args(argv)
    model_io.quiet_tensorflow()
    wanted = set(args.only.split(",")) if args.only else {c.name for c in CASES}
    for case in tqdm([c for c in CASES if c.name in wanted], desc="test models", unit="model"):
        build_case(case, args.out)
    build_presets(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
