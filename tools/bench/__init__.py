"""Bench: the device side against its classify-only floor and TensorFlow, side by side; its workers; the soak run."""
