from .imx500 import IMX500, NetworkIntrinsics

__all__ = ["IMX500", "NetworkIntrinsics"]
