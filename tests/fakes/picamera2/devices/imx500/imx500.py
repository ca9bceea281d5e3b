"""A stand-in for picamera2.devices.imx500.IMX500 (raspberrypi/picamera2 devices/imx500/imx500.py), strict where the
real one is, with the calls edge uses:
- IMX500(network_file, camera_id='', tensor_injection=False): RuntimeError('IMX500: Requested camera dev-node not
  found') without an IMX500 on the CSI port (DEVICE False), RuntimeError(f'Firmware file {path} does not exist.') for
  a missing network file; must come before Picamera2() (the real one uploads the firmware through the v4l2 subdev);
  the ROI starts as the full sensor (4056x3040);
- get_outputs(metadata, add_batch=False): None when the frame's metadata has no CnnOutputTensor (the sensor's network
  runs slower than the frame rate, so some frames carry none), else the real code: np.fromiter(float32), shapes from
  CnnOutputTensorInfo (a CnnOutputTensorInfoExported struct of the exact size, ValueError otherwise), each reshaped
  with order='F';
- get_input_size() -> (width, height) of the network input; get_roi_scaled(request, stream) with libcamera's
  geometry (_geometry.py), from the request's ScalerCrop, the raw and main stream sizes and the ROI;
- set_inference_roi_abs / set_inference_aspect_ratio / set_auto_aspect_ratio (a centre crop of the full sensor).

The network file: the real one parses an .rpk (firmware blocks, then a cpio archive with network_info.txt); the fake
reads the JSON its tests' stand-in for imx500-package writes ({"inputTensorWidth", "inputTensorHeight"}).

Test hooks: DEVICE, TENSORS (frame index -> the sensor's output arrays, each (h, w, k) float32 as the network lays it
out, or None for a frame without tensors), INSTANCES; for tests that run edge in a subprocess, $FAKE_IMX500_TENSORS
names an .npz whose array `a` (n, h, w, k) the sensor cycles through, on every $FAKE_IMX500_EVERY-th frame (default
1). How the sensor orders the dimensions it reports in CnnOutputTensorInfo is an assumption here: (h, w, k) data laid
out h fastest, so order='F' gives (h, w, k) back.
"""

from __future__ import annotations

import ctypes
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ... import _request
from ..._request import METADATA_HOOKS
from ._geometry import Rectangle, Size

NETWORK_NAME_LEN = 64
MAX_NUM_TENSORS = 16
MAX_NUM_DIMENSIONS = 16
DEVICE = True
INSTANCES: list[IMX500] = []


class OutputTensorInfo(ctypes.LittleEndianStructure):
    _fields_ = [("tensor_data_num", ctypes.c_uint32), ("num_dimensions", ctypes.c_uint32),
                ("size", ctypes.c_uint16 * MAX_NUM_DIMENSIONS)]


class CnnOutputTensorInfoExported(ctypes.LittleEndianStructure):
    _fields_ = [("network_name", ctypes.c_char * NETWORK_NAME_LEN), ("num_tensors", ctypes.c_uint32),
                ("info", OutputTensorInfo * MAX_NUM_TENSORS), ("frameCount", ctypes.c_uint8)]


class NetworkIntrinsics:
    def __init__(self, val: dict[str, Any] | None = None) -> None:
        self.intrinsics = val


def tensor_metadata(arrays: list[np.ndarray], frame: int) -> dict[str, Any]:
    """What libcamera's IMX500 pipeline puts in a frame's metadata: the float tensors and their shapes."""
    info = CnnOutputTensorInfoExported()
    info.network_name = b"edge-explainer"
    info.num_tensors = len(arrays)
    info.frameCount = frame % 256
    for i, a in enumerate(arrays):
        info.info[i].tensor_data_num = i
        info.info[i].num_dimensions = a.ndim
        for d, n in enumerate(a.shape):
            info.info[i].size[d] = n
    flat = np.concatenate([np.asarray(a, np.float32).ravel(order="F") for a in arrays])
    return {"CnnOutputTensor": flat.tolist(), "CnnOutputTensorInfo": bytes(info)}


def _tensors_from_env() -> Callable[[int], list[np.ndarray] | None] | None:
    path = os.environ.get("FAKE_IMX500_TENSORS")
    if not path:
        return None
    a = np.load(path)["a"]
    every = int(os.environ.get("FAKE_IMX500_EVERY", "1"))
    return lambda i: [a[(i // every) % len(a)]] if i % every == 0 else None


TENSORS: Callable[[int], list[np.ndarray] | None] | None = _tensors_from_env()


def _sensor_hook(index: int) -> dict[str, Any]:
    arrays = TENSORS(index) if TENSORS is not None else None
    return {} if arrays is None else tensor_metadata(arrays, index)


class IMX500:
    def __init__(self, network_file: str, camera_id: str = "", tensor_injection: bool = False) -> None:
        self.device_fd = None
        self.__cfg: dict[str, Any] = {"network_file": network_file, "input_tensor": {}}
        if not DEVICE:
            raise RuntimeError("IMX500: Requested camera dev-node not found")
        self.device_fd = object()
        self.__camera_num = 0
        if network_file != "":
            if not os.path.isfile(os.path.abspath(network_file)):
                raise RuntimeError(f"Firmware file {os.path.abspath(network_file)} does not exist.")
            info = json.loads(Path(network_file).read_text(encoding="utf-8"))
            width, height = int(info["inputTensorWidth"]), int(info["inputTensorHeight"])
            self.__cfg["input_tensor"] |= {"width": width, "height": height}
            self.__cfg["input_tensor_size"] = (width, height)
            if _sensor_hook not in METADATA_HOOKS:
                METADATA_HOOKS.append(_sensor_hook)
            _request.SENSOR_SIZE = _request.SENSOR_SIZE or (4056, 3040)  # the IMX500's pixel array
            _request.RAW_SIZE = _request.RAW_SIZE or (2028, 1520)  # its 2x2 binned mode
        self.set_inference_roi_abs(self.__get_full_sensor_resolution().to_tuple())
        INSTANCES.append(self)

    @staticmethod
    def __get_full_sensor_resolution() -> Rectangle:
        return Rectangle(0, 0, 4056, 3040)

    @property
    def camera_num(self) -> int:
        return self.__camera_num

    @property
    def config(self) -> dict[str, Any]:
        return self.__cfg

    @property
    def network_intrinsics(self) -> NetworkIntrinsics | None:
        return self.__cfg.get("intrinsics", None)

    def show_network_fw_progress_bar(self) -> None:
        return None  # FwProgressType.NONE: no readable progress source

    def get_outputs(self, metadata: dict[str, Any], add_batch: bool = False) -> list[np.ndarray] | None:
        output_tensor = metadata.get("CnnOutputTensor")
        if not output_tensor:
            return None
        np_output = np.fromiter(output_tensor, dtype=np.float32)
        offset = 0
        outputs = []
        for tensor_shape in self.get_output_shapes(metadata):
            size = int(np.prod(tensor_shape))
            reshaped = np_output[offset:offset + size].reshape(tensor_shape, order="F")
            outputs.append(np.expand_dims(reshaped, 0) if add_batch else reshaped)
            offset += size
        return outputs

    def get_output_shapes(self, metadata: dict[str, Any]) -> list[list[int]]:
        tensor_info = metadata.get("CnnOutputTensorInfo")
        if not tensor_info:
            return []
        size = ctypes.sizeof(CnnOutputTensorInfoExported)
        if len(tensor_info) != size:
            raise ValueError(f"tensor info length {len(tensor_info)} does not match expected size {size}")
        parsed = CnnOutputTensorInfoExported()
        ctypes.memmove(ctypes.addressof(parsed), bytes(tensor_info), size)
        return [list(t.size)[0:t.num_dimensions] for t in parsed.info[0:parsed.num_tensors]]

    def set_inference_roi_abs(self, roi: tuple[int, int, int, int]) -> None:
        self.__cfg["roi"] = Rectangle(*roi).bounded_to(self.__get_full_sensor_resolution())

    def set_inference_aspect_ratio(self, aspect_ratio: tuple[int, int]) -> None:
        f = self.__get_full_sensor_resolution()
        r = f.size.bounded_to_aspect_ratio(Size(aspect_ratio[0], aspect_ratio[1]))
        self.set_inference_roi_abs(r.centered_to(f.center).enclosed_in(f).to_tuple())

    def set_auto_aspect_ratio(self) -> None:
        self.set_inference_aspect_ratio(self.config["input_tensor_size"])

    def get_roi_scaled(self, request: Any, stream: str = "main") -> tuple[int, int, int, int]:
        picam2 = request.picam2
        isp_output_size = self.get_isp_output_size(picam2, stream)
        sensor_output_size = self.get_isp_output_size(picam2, "raw")
        scaler_crop = Rectangle(*request.get_metadata()["ScalerCrop"])
        obj = self.__get_full_sensor_resolution()
        return self.__get_obj_scaled(obj, isp_output_size, scaler_crop, sensor_output_size).to_tuple()

    @staticmethod
    def get_isp_output_size(picam2: Any, stream: str = "main") -> Size:
        return Size(*picam2.camera_configuration()[stream]["size"])

    def __get_obj_scaled(self, obj: Rectangle, isp_output_size: Size, scaler_crop: Rectangle,
                         sensor_output_size: Size) -> Rectangle:
        full_sensor = self.__get_full_sensor_resolution()
        sensor_crop = scaler_crop.scaled_by(sensor_output_size, full_sensor.size)
        if "roi" in self.config and self.config["roi"] != Rectangle(0, 0, 0, 0):
            obj = obj.bounded_to(self.config["roi"])
        obj_sensor = obj.scaled_by(sensor_output_size, full_sensor.size)
        obj_bound = obj_sensor.bounded_to(sensor_crop)
        obj_translated = obj_bound.translated_by(-sensor_crop.topLeft)
        return obj_translated.scaled_by(isp_output_size, sensor_crop.size)

    def get_input_size(self) -> tuple[int, int]:
        return self.config["input_tensor_size"]  # type: ignore[no-any-return]
