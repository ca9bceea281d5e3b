"""The library: a bundle opened, its feature model and NumPy head run, CAM maps computed and drawn; no service part."""
