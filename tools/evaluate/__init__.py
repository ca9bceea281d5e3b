"""Evaluate: accuracy and localisation of a bundle on held-out data (TensorFlow-free), before/after sheets."""
