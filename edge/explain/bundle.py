"""The bundle format: a directory with manifest.json, features.tflite and head.npz, written by tools.export.

The manifest is the contract between the workstation and the device: everything the device needs to turn a camera
frame into the model's input, and to check that the two halves of the model belong together.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edge.errors import BundleError
from edge.explain import imx500_record

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
FEATURES = "features.tflite"
HEAD = "head.npz"

SCORES = ("logit", "probability")
CHANNEL_ORDERS = ("RGB", "BGR")
RESIZE_MODES = ("bilinear", "area", "nearest")
OUTPUT_ACTIVATIONS = ("softmax", "sigmoid", "none")
HEAD_DTYPES = ("float32", "float16")  # how head.npz stores its weights; the head always computes in float32


@dataclass(frozen=True)
class Preprocess:
    """How a uint8 frame becomes the model input: resize, reorder channels, then x = pixel * scale + offset."""

    channel_order: str = "RGB"
    scale: tuple[float, ...] = (1.0, 1.0, 1.0)  # per channel, in the model's channel order
    offset: tuple[float, ...] = (0.0, 0.0, 0.0)
    resize: str = "bilinear"


@dataclass(frozen=True)
class Quantization:
    """Affine int8 quantisation of one tensor: real = scale * (q - zero_point)."""

    scale: float
    zero_point: int


@dataclass(frozen=True)
class FeatureModel:
    """The TFLite half: input -> activations A of the target layer."""

    dtype: str = "float32"  # "float32" or "int8"
    input_quantization: Quantization | None = None
    output_quantization: Quantization | None = None
    flops: int = 0  # 2 x multiply-accumulates of its Conv2D / DepthwiseConv2D / Dense layers


@dataclass(frozen=True)
class Manifest:
    """manifest.json, parsed and validated."""

    class_names: tuple[str, ...]
    input_shape: tuple[int, int, int]  # (height, width, channels) of the model input
    feature_shape: tuple[int, int, int]  # (h, w, k) of A, the target layer's activations
    target_layer: str
    preprocess: Preprocess = Preprocess()
    score: str = "logit"
    output_activation: str = "softmax"
    features: FeatureModel = FeatureModel()
    head_layers: tuple[str, ...] = ()  # the Keras layers the NumPy head replaces, for people reading the manifest
    head_dtype: str = "float32"  # storage of the head's Dense kernels (see HEAD_DTYPES)
    files: dict[str, str] = field(default_factory=dict)  # file name -> sha256
    source: dict[str, str] = field(default_factory=dict)  # model file, its sha256, TF/Keras versions, export time
    imx500: imx500_record.Imx500Trunk | None = None  # the trunk on the AI Camera (edge/explain/imx500_record.py)
    format_version: int = FORMAT_VERSION

    @property
    def input_height(self) -> int:
        return self.input_shape[0]

    @property
    def input_width(self) -> int:
        return self.input_shape[1]

    @property
    def input_channels(self) -> int:
        return self.input_shape[2]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def sha256(self) -> str:
        """One fingerprint of the whole bundle (of its files' checksums), for logs and fleet messages."""
        joined = "".join(f"{name}:{digest};" for name, digest in sorted(self.files.items()))
        return hashlib.sha256(joined.encode()).hexdigest()

    def to_json(self) -> str:
        raw = asdict(self)
        if raw["imx500"] is None:
            del raw["imx500"]  # bundles without a sensor trunk stay readable by readers older than the section
        return json.dumps(raw, indent=2) + "\n"


def parse_manifest(path: Path, raw: dict[str, Any]) -> Manifest:
    """The manifest that raw (manifest.json's object, read by edge.explain.open_bundle) holds, each field of its
    type; BundleError(path, ...) for a missing, unknown or malformed key (bundle_check checks its values)."""
    version = raw.get("format_version")
    if version != FORMAT_VERSION:
        raise BundleError(
            path, f"format version {version!r} is not supported (this edge-explainer reads {FORMAT_VERSION}); "
            "re-export the bundle or update edge-explainer"
        )
    known = set(Manifest.__dataclass_fields__)
    unknown = sorted(set(raw) - known)
    if unknown:
        raise BundleError(path, f"unknown key(s) {', '.join(unknown)}")
    try:
        manifest = Manifest(
            class_names=tuple(_str_list(raw["class_names"])),
            input_shape=_shape3(raw["input_shape"]),
            feature_shape=_shape3(raw["feature_shape"]),
            target_layer=str(raw["target_layer"]),
            preprocess=_preprocess(raw.get("preprocess", {})),
            score=str(raw.get("score", "logit")),
            output_activation=str(raw.get("output_activation", "softmax")),
            features=_feature_model(raw.get("features", {})),
            head_layers=tuple(_str_list(raw.get("head_layers", []))),
            head_dtype=str(raw.get("head_dtype", "float32")),
            files={str(k): str(v) for k, v in dict(raw.get("files", {})).items()},
            source={str(k): str(v) for k, v in dict(raw.get("source", {})).items()},
            imx500=imx500_record.parse(raw.get("imx500")),
        )
    except KeyError as e:
        raise BundleError(path, f"missing key {e.args[0]!r}") from e
    except (TypeError, ValueError, AttributeError, OverflowError) as e:
        # AttributeError: a section that should be an object holds a list, a number or null.
        raise BundleError(path, f"malformed: {e}") from e
    return manifest


def _str_list(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError(f"expected a list of strings, got {value!r}")
    return value


def _shape3(value: Any) -> tuple[int, int, int]:
    if not (isinstance(value, list) and len(value) == 3 and all(isinstance(v, int) and v > 0 for v in value)):
        raise ValueError(f"expected a shape of three positive integers, got {value!r}")
    return (value[0], value[1], value[2])


def _preprocess(raw: dict[str, Any]) -> Preprocess:
    return Preprocess(
        channel_order=str(raw.get("channel_order", "RGB")),
        scale=tuple(float(v) for v in raw.get("scale", (1.0, 1.0, 1.0))),
        offset=tuple(float(v) for v in raw.get("offset", (0.0, 0.0, 0.0))),
        resize=str(raw.get("resize", "bilinear")),
    )


def _quantization(raw: Any) -> Quantization | None:
    if raw is None:
        return None
    return Quantization(scale=float(raw["scale"]), zero_point=int(raw["zero_point"]))


def _feature_model(raw: dict[str, Any]) -> FeatureModel:
    return FeatureModel(
        dtype=str(raw.get("dtype", "float32")),
        input_quantization=_quantization(raw.get("input_quantization")),
        output_quantization=_quantization(raw.get("output_quantization")),
        flops=int(raw.get("flops", 0)),
    )
