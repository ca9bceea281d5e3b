"""The ONNX front end of tools.export: an .onnx classifier split at a tensor into a TFLite feature model and the
NumPy head (features through onnx2torch and the PyTorch front end's litert-torch conversion)."""
