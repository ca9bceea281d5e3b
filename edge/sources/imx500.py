"""imx500:BUNDLE: the Raspberry Pi AI Camera (Sony IMX500), the bundle's trunk running on the sensor itself.

Each frame's output tensor (picamera2.devices.IMX500.get_outputs: float32, already dequantised) is the feature map A;
the Pi runs only the NumPy head for the classes and the exact gradient, and the CAM is placed over the main stream
where the sensor's crop lies (IMX500.get_roi_scaled). The sensor's network runs slower than the frame rate, so some
frames carry no tensor: they are counted (missing_tensors) and skipped, never explained from an older tensor.
The network file is BUNDLE/imx500/network.rpk, made from packerOut.zip on first use by `imx500-package` (apt
imx500-tools). CAM methods that need trunk passes on the frame are not available here: the trunk is on the sensor.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.errors import BundleError, MethodError
from edge.explain import imx500_record
from edge.explain.cam import CamContext, get_method, needs_trunk, normalise
from edge.explain.cam.smoothing import raw_map
from edge.explain.head_ops import F32
from edge.explain.imx500_record import Imx500Trunk
from edge.explain.open_bundle import read_manifest
from edge.records import Frame
from edge.sources.base import SourceBase, SourceConfig, SourceError, SourceUnavailableError
from edge.sources.picamera2 import _import_picamera2
from edge.sources.picamera2_frames import packed_to_rgb

_LOGGER = logging.getLogger(__name__)
RPK = f"{imx500_record.DIR}/network.rpk"
CANVAS_MAX = 160  # the long side of the frame-shaped map the CAM is placed in: overlays upsample it anyway
PACKAGE_HINT = "sudo apt install imx500-tools (it brings imx500-package)"


@dataclass(frozen=True)
class SensorOutput:
    """One frame's tensor from the sensor: A (h, w, k) float32 and the sensor's crop (x, y, w, h) in the frame."""

    A: F32
    roi: tuple[int, int, int, int]
    frame_size: tuple[int, int]  # (height, width) of the main stream the roi is given in

    def explain(self, explainer: Any, *, target: int | str | None = None, method: str = "gradcam",
                aug_smooth: bool = False, eigen_smooth: bool = False) -> Any:
        """explainer's Explanation for this tensor: its head on A, the map placed at the crop in a frame-shaped map."""
        from edge.explain.explainer import Explanation

        cam_method = get_method(method)
        if aug_smooth:
            raise MethodError("aug_smooth needs trunk passes, not available on the imx500 source (the trunk runs on "
                              "the sensor): turn [model] aug_smooth off")
        if needs_trunk(cam_method):
            raise MethodError(f"CAM method {method!r} needs trunk passes, not available on the imx500 source "
                              "(the trunk runs on the sensor): choose one that needs only A and the head")
        t0 = time.perf_counter()
        head, score = explainer.head, explainer.score
        hp = head.forward(self.A)
        c = int(hp.probabilities.argmax()) if target is None else explainer.class_index(target)
        ctx = CamContext(self.A, head, hp, head.score_gradient(hp, c, score), c, score)
        cam_raw = np.asarray(raw_map(cam_method, ctx, eigen_smooth), np.float32)
        cam = cam_in_frame(normalise(cam_raw), self.roi, self.frame_size)
        value = hp.logits.item(c) if score == "logit" else hp.probabilities.item(c)
        timings = {"preprocess": 0.0, "features": 0.0, "head": 0.0, "cam": (time.perf_counter() - t0) * 1e3}
        return Explanation(hp.probabilities, c, explainer.manifest.class_names[c], value, cam, cam_raw, method,
                           timings)


def cam_in_frame(cam: F32, roi: tuple[int, int, int, int], frame_size: tuple[int, int]) -> F32:
    """(h', w') map in [0, 1] -> a map shaped like the frame (at most CANVAS_MAX on its long side), zero outside the
    sensor's crop roi = (x, y, w, h) in frame pixels, the map resized into it."""
    height, width = frame_size
    f = min(1.0, CANVAS_MAX / max(height, width))
    canvas = np.zeros((max(1, round(height * f)), max(1, round(width * f))), np.float32)  # (H*f, W*f) float32
    x0, y0 = round(roi[0] * f), round(roi[1] * f)
    x1 = min(canvas.shape[1], round((roi[0] + roi[2]) * f))
    y1 = min(canvas.shape[0], round((roi[1] + roi[3]) * f))
    if x1 > x0 and y1 > y0:
        canvas[y0:y1, x0:x1] = cv2.resize(np.asarray(cam, np.float32), (x1 - x0, y1 - y0),
                                          interpolation=cv2.INTER_LINEAR)
    return canvas


def network_file(bundle: Path) -> Path:
    """BUNDLE/imx500/network.rpk, packaged from packerOut.zip by imx500-package on first use (into a cache
    directory when the bundle is read-only)."""
    ready = bundle / RPK
    if ready.is_file():
        return ready
    tool = shutil.which("imx500-package")
    if tool is None:
        raise SourceError(f"imx500: {ready} is missing and imx500-package is not installed: {PACKAGE_HINT}")
    packer = bundle / imx500_record.NETWORK
    out = bundle / imx500_record.DIR
    if not os.access(out, os.W_OK):
        digest = hashlib.sha256(packer.read_bytes()).hexdigest()[:16]
        out = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "edge-explainer" / "imx500" / digest
        out.mkdir(parents=True, exist_ok=True)
        if (out / "network.rpk").is_file():
            return out / "network.rpk"
    _LOGGER.info("imx500: packaging %s with imx500-package into %s", packer, out)
    proc = subprocess.run([tool, "-i", str(packer), "-o", str(out)], capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not (out / "network.rpk").is_file():
        lines = (proc.stderr or proc.stdout).strip().splitlines() or [f"exit {proc.returncode}"]
        raise SourceError(f"imx500: imx500-package failed on {packer}: {lines[-1]}")
    return out / "network.rpk"


class Imx500Source(SourceBase):
    """The AI Camera with the bundle's network on its sensor; frames carry `sensor` (a SensorOutput)."""

    live = True

    def __init__(self, bundle: str, config: SourceConfig | None = None) -> None:
        if not bundle:
            raise SourceError("source imx500: needs the bundle exported with --trunk imx500, e.g. imx500:BUNDLE")
        self.config = config or SourceConfig()
        self.name = f"imx500:{bundle}"
        self.bundle = Path(bundle)
        self.record: Imx500Trunk | None = None
        self.imx500: Any = None
        self.camera: Any = None
        self.missing_tensors = 0  # frames skipped because the sensor gave no tensor with them
        self._index = 0

    def open(self) -> None:
        try:
            manifest = read_manifest(self.bundle)
        except BundleError as e:
            raise SourceError(f"imx500: {e}") from e
        if manifest.imx500 is None:
            raise SourceError(f"imx500: {self.bundle} has no IMX500 trunk; export it with tools.export --trunk imx500")
        self.record = manifest.imx500
        rpk = network_file(self.bundle)
        picamera2 = _import_picamera2()
        from picamera2.devices import IMX500  # the AI Camera helper, in python3-picamera2 since 0.3.22

        try:  # before Picamera2(): it uploads the network firmware to the sensor
            self.imx500 = IMX500(str(rpk))
        except RuntimeError as e:
            raise SourceUnavailableError(f"imx500: {e}") from e
        try:
            self.camera = picamera2.Picamera2(self.imx500.camera_num)
        except (IndexError, RuntimeError) as e:
            raise SourceUnavailableError(f"imx500: the AI Camera cannot be opened ({e.__cause__ or e})") from e
        size = (self.config.width, self.config.height)
        try:
            self.camera.configure(self.camera.create_preview_configuration(
                main={"size": size, "format": self.config.main_format}, buffer_count=12))
            self.imx500.show_network_fw_progress_bar()
            self.camera.start()
            self.imx500.set_auto_aspect_ratio()  # the sensor's crop keeps the network input's aspect ratio
        except (RuntimeError, ValueError, OSError) as e:
            self.close()
            raise SourceError(f"imx500: cannot start the AI Camera: {e}") from e

    def read(self) -> Frame | None:
        if self.camera is None or self.record is None:
            raise SourceError("imx500: read before open")
        deadline = time.monotonic() + self.config.capture_timeout_s
        while True:
            frame = self._next()
            if frame is not None:
                return frame
            if time.monotonic() > deadline:
                raise SourceUnavailableError(f"imx500: no output tensor from the sensor within "
                                             f"{self.config.capture_timeout_s:g} s (network not running?)")

    def _next(self) -> Frame | None:
        """The next frame with its tensor, or None (counted) when the sensor gave none with it."""
        assert self.record is not None
        try:
            request = self.camera.capture_request(wait=self.config.capture_timeout_s)
        except TimeoutError as e:
            raise SourceUnavailableError(f"imx500: no frame within {self.config.capture_timeout_s:g} s") from e
        try:
            outputs = self.imx500.get_outputs(request.get_metadata())
            if outputs is None:
                self.missing_tensors += 1
                return None
            image = packed_to_rgb(request.make_array("main"), self.config.main_format)
            roi = tuple(int(v) for v in self.imx500.get_roi_scaled(request))
        finally:
            request.release()
        A = np.asarray(outputs[0], np.float32)
        if self.record.output_order == "CHW":  # a PyTorch network's tensor: (k, h, w)
            A = A.transpose(1, 2, 0)
        A = np.ascontiguousarray(A)  # (h, w, k) float32, as the manifest records
        if A.shape != self.record.output_shape:
            raise SourceError(f"imx500: the sensor's tensor is {A.shape}, the bundle's trunk gives "
                              f"{self.record.output_shape}: the camera runs another network")
        sensor = SensorOutput(A, (roi[0], roi[1], roi[2], roi[3]), (image.shape[0], image.shape[1]))
        frame = Frame(image=image, index=self._index, timestamp=time.time(), sensor=sensor)
        self._index += 1
        return frame

    def close(self) -> None:
        camera, self.camera = self.camera, None
        if camera is not None:
            try:
                camera.close()
            except RuntimeError as e:
                _LOGGER.warning("imx500: close failed: %s", e)
        if self.missing_tensors:
            _LOGGER.info("imx500: %d frame(s) came without a tensor and were skipped", self.missing_tensors)
