"""Ablation: train, export and evaluate each explanation-guidance arm with one budget."""
