"""The manifest's `imx500` section: the trunk compiled for the Raspberry Pi AI Camera's sensor (tools.export --trunk
imx500), what its output tensor is and what the sensor feeds it. Absent from bundles without an IMX500 trunk."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DIR = "imx500"
NETWORK = f"{DIR}/packerOut.zip"  # imxconv-tf's or imxconv-pt's output; imx500-package (on the Pi) makes the .rpk
QUANTISED_TRUNK = f"{DIR}/trunk_mct.keras"  # MCT's exported model (Keras): tools.verify simulates the sensor with it
QUANTISED_TRUNK_ONNX = f"{DIR}/trunk_mct.onnx"  # the same for PyTorch models: MCT's ONNX
QUANTISED_TRUNKS = (QUANTISED_TRUNK, QUANTISED_TRUNK_ONNX)
MEMORY_REPORT = f"{DIR}/memory_report.json"
# the axis order of picamera2's get_outputs array: (h', w', k) from a Keras network, (k, h', w') from PyTorch
OUTPUT_ORDERS = ("HWC", "CHW")


@dataclass(frozen=True)
class Imx500Trunk:
    """The sensor-side trunk: (h, w) frames scaled by input_scale -> A (h', w', k) in int8 steps of output_scale."""

    output_shape: tuple[int, int, int]  # (h', w', k) of A
    output_order: str = "HWC"  # axis order of the array picamera2's IMX500.get_outputs returns (CHW: transposed to A)
    output_scale: float = 1.0  # the sensor's int8 step: A = output_scale * q (picamera2 hands A already dequantised)
    input_size: tuple[int, int] = (224, 224)  # (height, width) of the network input the sensor scales its crop to
    input_scale: float = 1 / 256  # the network sees x = pixel * input_scale (MCT's power-of-two input quantiser)
    channel_order: str = "RGB"
    crop: str = "centre"  # the sensor's crop: the full sensor cut to the input's aspect ratio about its centre
    memory: dict[str, str] = field(default_factory=dict)  # the converter's report: usage, utilisation, fit in chip
    toolchain: dict[str, str] = field(default_factory=dict)  # MCT, converter, TPC versions
    quantised_trunk: str = QUANTISED_TRUNK  # MCT's model in the bundle, for the workstation's simulation

    @property
    def fits(self) -> bool:
        return str(self.memory.get("Fit In Chip", "")).lower() == "true"


def parse(raw: Any) -> Imx500Trunk | None:
    """The manifest's imx500 object (None when absent); TypeError/ValueError/KeyError on a malformed one."""
    if raw is None:
        return None
    out = tuple(int(v) for v in raw["output_shape"])
    size = tuple(int(v) for v in raw["input_size"])
    if len(out) != 3 or len(size) != 2 or min(out + size) < 1:
        raise ValueError(f"imx500 output_shape {out} / input_size {size} are not (h, w, k) / (h, w)")
    trunk = Imx500Trunk(
        output_shape=(out[0], out[1], out[2]),
        output_order=str(raw.get("output_order", "HWC")),
        output_scale=float(raw["output_scale"]),
        input_size=(size[0], size[1]),
        input_scale=float(raw["input_scale"]),
        channel_order=str(raw.get("channel_order", "RGB")),
        crop=str(raw.get("crop", "centre")),
        memory={str(k): str(v) for k, v in dict(raw.get("memory", {})).items()},
        toolchain={str(k): str(v) for k, v in dict(raw.get("toolchain", {})).items()},
        quantised_trunk=str(raw.get("quantised_trunk", QUANTISED_TRUNK)),
    )
    if trunk.output_order not in OUTPUT_ORDERS:
        raise ValueError(f"imx500 output_order {trunk.output_order!r} is not one of {', '.join(OUTPUT_ORDERS)}")
    if trunk.quantised_trunk not in QUANTISED_TRUNKS:
        raise ValueError(f"imx500 quantised_trunk {trunk.quantised_trunk!r} is not one of "
                         f"{', '.join(QUANTISED_TRUNKS)}")
    if trunk.output_scale <= 0 or trunk.input_scale <= 0:
        raise ValueError("imx500 output_scale and input_scale must be positive")
    return trunk
