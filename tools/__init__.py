"""Workstation tools: train, export, verify, evaluate, bench. TensorFlow is allowed here, never under edge/."""
