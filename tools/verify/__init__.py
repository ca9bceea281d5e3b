"""Verify: does a bundle's Grad-CAM on the device path equal the framework's own?

verifier.py is the command; tf_reference.py and tf_cams.py the TensorFlow references; testmodels.py the test-model zoo.
"""
