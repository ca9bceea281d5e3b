"""picamera2.devices as the fake has it: the IMX500 helper only (the real one also has Hailo and IMX708)."""

from .imx500 import IMX500, NetworkIntrinsics

__all__ = ["IMX500", "NetworkIntrinsics"]
