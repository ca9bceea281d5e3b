"""--preprocess presets and custom forms -> the manifest's Preprocess (x = pixel * scale + offset, per channel)."""

from __future__ import annotations

from edge.explain.bundle import Preprocess
from tools.export.front_end import ExportError

# name -> (channel order, mean in pixel units, std in pixel units)
PRESETS: dict[str, tuple[str, tuple[float, ...], tuple[float, ...]]] = {
    "none": ("RGB", (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),  # the model rescales inside (Rescaling layer)
    "unit": ("RGB", (0.0, 0.0, 0.0), (255.0, 255.0, 255.0)),  # x / 255, the fruit tutorials
    "symmetric": ("RGB", (127.5, 127.5, 127.5), (127.5, 127.5, 127.5)),  # MobileNet/Xception preprocess_input
    "imagenet": ("RGB", (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)),  # torch-style mean/std
    "caffe": ("BGR", (103.939, 116.779, 123.68), (1.0, 1.0, 1.0)),  # VGG16/ResNet50 preprocess_input
}
HELP = (
    "how pixels become model input: a preset (" + ", ".join(PRESETS) + ") or "
    "'scale=S[:S:S],offset=O[:O:O]' or 'mean=M:M:M,std=S:S:S' in pixel units (0-255), in the model's channel order"
)


class PreprocessSpecError(ExportError, ValueError):
    """A --preprocess value that is neither a preset nor a well-formed custom form."""


def parse(spec: str, channel_order: str | None, channels: int = 3, resize: str = "bilinear") -> Preprocess:
    """Parse --preprocess; --channel-order overrides the preset's order."""
    if spec in PRESETS:
        order, mean, std = PRESETS[spec]
    else:
        order, mean, std = "RGB", (0.0,) * channels, (1.0,) * channels
        fields = _fields(spec)
        if "mean" in fields or "std" in fields:
            mean = _values(fields.pop("mean", "0"), channels, spec)
            std = _values(fields.pop("std", "1"), channels, spec)
        if "scale" in fields or "offset" in fields:
            scale = _values(fields.pop("scale", "1"), channels, spec)
            offset = _values(fields.pop("offset", "0"), channels, spec)
            std = tuple(1.0 / s for s in scale)
            mean = tuple(-o / s for o, s in zip(offset, scale, strict=True))
        if fields:
            raise PreprocessSpecError(f"--preprocess {spec!r}: unknown field(s) {', '.join(fields)}")
    if any(s == 0 for s in std):
        raise PreprocessSpecError(f"--preprocess {spec!r}: std and scale must not be zero")
    mean, std = mean[:channels], std[:channels]
    return Preprocess(
        channel_order=channel_order or order,
        scale=tuple(1.0 / s for s in std),
        offset=tuple(-m / s for m, s in zip(mean, std, strict=True)),
        resize=resize,
    )


def _fields(spec: str) -> dict[str, str]:
    fields = {}
    for part in spec.split(","):
        key, sep, value = part.partition("=")
        if not sep:
            raise PreprocessSpecError(f"--preprocess {spec!r}: expected a preset ({', '.join(PRESETS)}) or key=value")
        fields[key.strip()] = value.strip()
    return fields


def _values(text: str, channels: int, spec: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(":"))
    except ValueError as e:
        raise PreprocessSpecError(f"--preprocess {spec!r}: {e}") from e
    if len(values) == 1:
        values *= channels
    if len(values) != channels:
        raise PreprocessSpecError(f"--preprocess {spec!r}: give 1 or {channels} values, got {len(values)}")
    return values
