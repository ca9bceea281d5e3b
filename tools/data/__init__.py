"""Data: the folder-per-class fruit dataset with masks, backgrounds, camera-like composited frames, sample selection.

TensorFlow-free: the device-side evaluation and the benchmarks use it too.
"""
