"""One way to open a bundle: each file is read here, once, and its parsed parts handed down. manifest.json is read
through edge.safe_io, parsed by edge.explain.bundle and checked by edge.explain.bundle_check with every file's checksum,
head.npz's members and features.tflite's structure; the head is built from the arrays read; then the interpreter loads
and the three are held against each other, all before the explainer sees any of them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edge.errors import BundleError
from edge.explain import bundle_check
from edge.explain.bundle import FEATURES, HEAD, MANIFEST, Manifest, parse_manifest
from edge.explain.head import Head
from edge.explain.runtime import AUTO_THREADS, FeatureInterpreter, resolve_threads
from edge.safe_io import loads_json, read_regular

MAX_MANIFEST = 1 << 20  # bytes; a manifest is a few KB even with 1,000 class names


@dataclass(frozen=True)
class OpenBundle:
    """A bundle read and checked: what an Explainer is made of."""

    path: Path
    manifest: Manifest
    features: FeatureInterpreter
    head: Head


def read_manifest(bundle: Path) -> Manifest:
    """bundle/manifest.json read, parsed and its values checked (not the other files: see bundle_check.verify_files)."""
    path = bundle / MANIFEST
    if not bundle.is_dir():
        raise BundleError(bundle, "is not a bundle directory (expected manifest.json, features.tflite, head.npz)")
    try:
        raw = loads_json(read_regular(path, MAX_MANIFEST).decode("utf-8"))
    except FileNotFoundError as e:
        raise BundleError(path, "missing; export the model with `python -m tools.export`") from e
    except (OSError, ValueError) as e:  # ValueError: bad UTF-8 or JSON, nested too deeply
        raise BundleError(path, f"unreadable JSON ({e})") from e
    if not isinstance(raw, dict):
        raise BundleError(path, "must hold a JSON object")
    manifest = parse_manifest(path, raw)
    bundle_check.check_values(path, manifest)
    return manifest


def open_bundle(path: str | Path, *, runtime: str = "auto",
                num_threads: int | str | None = AUTO_THREADS) -> OpenBundle:
    """The bundle at path, checked; BundleError names the file and the problem. num_threads as resolve_threads takes
    it: a wrong one is the caller's TypeError/ValueError, raised before any file is read."""
    threads = resolve_threads(num_threads)
    path = Path(path)
    manifest = read_manifest(path)
    head_path, features_path = path / HEAD, path / FEATURES
    bundle_check.verify_files(path, manifest)
    header, arrays = bundle_check.read_head_archive(head_path)  # only the arrays the spec names, sizes checked first
    bundle_check.check_features(features_path)
    head = Head.from_archive(head_path, header, arrays)
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
