"""Keras knowledge shared by export, verify, train and bench: loading user models, graph walks, model builders."""
