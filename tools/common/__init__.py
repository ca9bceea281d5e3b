"""Shared by every job: one-line CLI errors, contact sheets, the edge side run in a TensorFlow-free process."""
