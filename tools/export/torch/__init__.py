"""The PyTorch front end of tools.export: a traced nn.Module split into a TFLite feature model and the NumPy head."""
