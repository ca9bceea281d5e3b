"""Export: a trained classifier -> bundle (features.tflite + head.npz + manifest.json).

exporter.py is the command and the bundle writer; front_end.py the seam every model format meets it at; formats.py the
front ends (keras/, torch/ for PyTorch modules and .pt2 programs, onnx/), one per model format; preprocess_spec.py the
--preprocess forms.
"""
