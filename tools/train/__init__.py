"""Train: the demo fruit classifier on composited frames, with explanation guidance and a training report."""
