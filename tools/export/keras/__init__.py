"""The Keras front end of the export: head builder, TFLite feature model (float/int8), BatchNorm folding."""
