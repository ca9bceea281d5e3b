"""Export: a trained classifier -> bundle (features.tflite + head.npz + manifest.json).

exporter.py is the command and the bundle writer; preprocess_spec.py the --preprocess forms; one front end per model
format below it (keras/ today).
"""
