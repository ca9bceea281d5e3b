"""One way to open a bundle: open_bundle() reads and checks manifest.json, every file's checksum, head.npz and
features.tflite, and that the three agree, before the explainer sees any of them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.errors import BundleError
from edge.explain import bundle as bundle_format
from edge.explain.bundle import Manifest
from edge.explain.bundle_check import trial
from edge.explain.head import Head
from edge.explain.runtime import AUTO_THREADS, FeatureInterpreter, resolve_threads


@dataclass(frozen=True)
class OpenBundle:
    """A bundle read and checked: what an Explainer is made of."""

    path: Path
    manifest: Manifest
    features: FeatureInterpreter
    head: Head


def open_bundle(path: str | Path, *, runtime: str = "auto",
                num_threads: int | str | None = AUTO_THREADS) -> OpenBundle:
    """The bundle at path, checked; BundleError names the file and the problem. num_threads as resolve_threads takes
    it: a wrong one is the caller's TypeError/ValueError, raised before any file is read."""
    threads = resolve_threads(num_threads)
    path = Path(path)
    manifest = bundle_format.read_manifest(path)
    bundle_format.verify_files(path, manifest)
    head_path, features_path = path / bundle_format.HEAD, path / bundle_format.FEATURES
    head = Head.load(head_path)
    with trial(head_path):  # a spec whose shapes disagree fails here, as a BundleError, not in the first frame
        head.forward(np.zeros(head.input_shape, np.float32))
    features = FeatureInterpreter(features_path, runtime=runtime, num_threads=threads)
    for file, agrees, problem in (
        (head_path, head.input_shape == manifest.feature_shape,
         f"takes features {head.input_shape} but the manifest says {manifest.feature_shape}"),
        (head_path, head.num_classes == manifest.num_classes,
         f"has {head.num_classes} outputs but the manifest names {manifest.num_classes} classes"),
        (features_path, features.input_shape == manifest.input_shape,
         f"takes input {features.input_shape} but the manifest says {manifest.input_shape}"),
        (features_path, features.output_shape == manifest.feature_shape,
         f"gives features {features.output_shape} but the manifest says {manifest.feature_shape}"),
    ):
        if not agrees:
            raise BundleError(file, problem)
    return OpenBundle(path, manifest, features, head)

