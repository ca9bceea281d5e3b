"""The bundle checked: the manifest's values, its files' names and checksums, the head archive's members, the TFLite
structure.

A bundle comes from elsewhere (a copy, a download, a fleet update), so every file is treated as hostile until checked:
the manifest may only name plain files inside the bundle, each with the checksum it recorded; head.npz is read member
by member, only the arrays its spec names, each with its size checked from the ZIP directory and the .npy header before
anything is decompressed; and features.tflite's flatbuffer is walked (edge.explain.flatbuffer_check) before an
interpreter maps it. edge.explain.open_bundle calls these in that order.
"""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from pathlib import Path
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray

from edge.errors import BundleError
from edge.explain.bundle import (
    CHANNEL_ORDERS,
    FEATURES,
    HEAD,
    HEAD_DTYPES,
    MANIFEST,
    OUTPUT_ACTIVATIONS,
    RESIZE_MODES,
    SCORES,
    Manifest,
)
from edge.explain.flatbuffer_check import FlatbufferError, check_tflite

MAX_SPEC = 1 << 20  # bytes of head.npz's JSON spec
MAX_HEAD_BYTES = 1 << 30  # all arrays of a head together (a VGG-sized Flatten head is ~400 MB in float32)
PLAIN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
ARRAYS_OF_OP = {"affine": ("scale", "offset"), "dense": ("kernel", "bias", "spatial_sum")}  # as Head.save names them


def check_values(path: Path, m: Manifest) -> None:
    """Every enumerated value of the manifest is one this reader knows, and preprocess has one value per channel."""
    problems = []
    if not m.class_names:
        problems.append("class_names is empty")
    if m.score not in SCORES:
        problems.append(f"score {m.score!r} is not one of {', '.join(SCORES)}")
    if m.output_activation not in OUTPUT_ACTIVATIONS:
        problems.append(f"output_activation {m.output_activation!r} is not one of {', '.join(OUTPUT_ACTIVATIONS)}")
    if m.preprocess.channel_order not in CHANNEL_ORDERS:
        problems.append(f"preprocess.channel_order {m.preprocess.channel_order!r} is not RGB or BGR")
    if m.preprocess.resize not in RESIZE_MODES:
        problems.append(f"preprocess.resize {m.preprocess.resize!r} is not one of {', '.join(RESIZE_MODES)}")
    channels = m.input_shape[2]
    if len(m.preprocess.scale) != channels or len(m.preprocess.offset) != channels:
        problems.append(f"preprocess.scale/offset need {channels} values, one per input channel")
    if m.features.dtype not in ("float32", "int8"):
        problems.append(f"features.dtype {m.features.dtype!r} is not float32 or int8")
    if m.head_dtype not in HEAD_DTYPES:
        problems.append(f"head_dtype {m.head_dtype!r} is not one of {', '.join(HEAD_DTYPES)}")
    if problems:
        raise BundleError(path, "; ".join(problems))


def sha256_file(path: Path) -> str:
    """The checksum a manifest records for each of the bundle's files (hex SHA-256), read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_files(bundle_dir: Path, m: Manifest) -> None:
    """Every file the manifest lists is a plain name inside the bundle, exists and has the checksum it recorded."""
    manifest_path = bundle_dir / MANIFEST
    for name in (FEATURES, HEAD):
        if name not in m.files:
            raise BundleError(manifest_path, f"lists no sha256 for {name}")
    check_file_names(manifest_path, list(m.files))
    for name, expected in m.files.items():
        path = bundle_dir / name
        if not path.is_file():
            raise BundleError(path, "missing from the bundle")
        actual = sha256_file(path)
        if actual != expected:
            raise BundleError(
                path, f"checksum mismatch (manifest {expected[:12]}..., file {actual[:12]}...): corrupt or replaced"
            )


def check_file_names(path: Path, names: list[str]) -> None:
    """Every name the manifest's `files` lists is a plain file name inside the bundle, or inside one folder of it
    (imx500/packerOut.zip): no absolute path, no .., no deeper path."""
    for name in names:
        parts = name.split("/")
        if len(parts) > 2 or not all(PLAIN_NAME.fullmatch(part) and part not in (".", "..") for part in parts):
            raise BundleError(path, f"files lists {name[:40]!r}: only plain file names inside the bundle are allowed")


def check_features(path: Path) -> None:
    """features.tflite's flatbuffer structure, before an interpreter maps it."""
    try:
        check_tflite(path)
    except FlatbufferError as e:
        raise BundleError(path, f"not a loadable TFLite model ({e})") from e
    except (OSError, ValueError) as e:
        raise BundleError(path, f"cannot be read ({e})") from e


def read_head_archive(path: Path) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
    """(the spec as a dict, the arrays the spec names) from head.npz; BundleError for anything malformed."""
    try:
        with zipfile.ZipFile(path) as archive:
            spec = _spec(path, archive)
            arrays: dict[str, NDArray[Any]] = {}
            budget = MAX_HEAD_BYTES
            for name in sorted(_named_arrays(spec) & {n.removesuffix(".npy") for n in archive.namelist()}):
                arrays[name] = _member(path, archive, name, budget)
                budget -= arrays[name].nbytes
            return spec, arrays
    except FileNotFoundError as e:
        raise BundleError(path, "missing from the bundle") from e
    except RecursionError as e:  # a spec nested too deeply for the JSON parser
        raise BundleError(path, "not a readable head file (JSON nested too deeply)") from e
    except (OSError, zipfile.BadZipFile, EOFError, ValueError, NotImplementedError, RuntimeError) as e:
        # RuntimeError: an encrypted member; NotImplementedError: a compression method zipfile lacks.
        raise BundleError(path, f"not a readable head file ({str(e)[:200]})") from e


def _spec(path: Path, archive: zipfile.ZipFile) -> dict[str, Any]:
    spec_array = _member(path, archive, "spec", MAX_SPEC)
    if spec_array.dtype.kind != "U" or spec_array.ndim != 0:
        raise BundleError(path, "malformed head (its spec is not a JSON string)")
    # json.loads on a member's text (files are read through safe_io once, in open_bundle); too deep: RecursionError,
    # worded by read_head_archive
    spec = json.loads(str(spec_array))
    if not isinstance(spec, dict) or not isinstance(spec.get("ops"), list) or not all(
            isinstance(op, dict) for op in spec["ops"]):
        raise BundleError(path, "malformed head (its spec is not an object with a list of ops)")
    return spec


def _named_arrays(spec: dict[str, Any]) -> set[str]:
    names = {"cam_weights"}
    for i, op in enumerate(spec["ops"]):
        names |= {f"{i}.{name}" for name in ARRAYS_OF_OP.get(str(op.get("op")), ())}
    return names


def _member(path: Path, archive: zipfile.ZipFile, name: str, budget: int) -> NDArray[Any]:
    """One .npy member, its declared sizes checked against budget before it is decompressed."""
    try:
        info = archive.getinfo(name + ".npy")
    except KeyError as e:
        raise BundleError(path, f"has no {name!r} array") from e
    if info.file_size > budget:
        raise BundleError(path, f"array {name!r} declares {info.file_size} bytes, over the {budget}-byte limit")
    with archive.open(info) as f:
        shape, fortran, dtype = _npy_header(f)
        if dtype.hasobject:  # np.load would unpickle it: code from the file, run on load
            raise BundleError(path, f"not a readable head file (array {name!r} holds Python objects; reading it "
                                    "would need allow_pickle, which a bundle never gets)")
        nbytes = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize  # float: a forged shape may overflow int64
        if nbytes > min(budget, info.file_size):
            raise BundleError(path, f"array {name!r} declares {nbytes} bytes of {dtype}: more than it holds")
        data = f.read(nbytes)
    if len(data) != nbytes:
        raise BundleError(path, f"array {name!r} is cut short ({len(data)} of {nbytes} bytes)")
    return np.frombuffer(data, dtype).reshape(shape, order="F" if fortran else "C").copy()


def _npy_header(f: IO[bytes]) -> tuple[tuple[int, ...], bool, np.dtype[Any]]:
    version = np.lib.format.read_magic(f)  # type: ignore[no-untyped-call]
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)  # type: ignore[no-untyped-call]
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)  # type: ignore[no-untyped-call]
    else:
        raise ValueError(f"unsupported .npy version {version}")
    return tuple(int(d) for d in shape), bool(fortran), np.dtype(dtype)
