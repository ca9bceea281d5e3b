"""A wrong or corrupt bundle raises one BundleError whose message names the file and the problem."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edge import BundleError, Explainer
from edge.explain.bundle_check import sha256_file


@pytest.fixture
def bundle(fruit_bundle: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "bundle"
    shutil.copytree(fruit_bundle, copy)
    return copy


def _edit_manifest(bundle: Path, **changes: object) -> None:
    path = bundle / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest.update(changes)
    path.write_text(json.dumps(manifest))


def _rehash(bundle: Path, name: str) -> None:
    path = bundle / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["files"][name] = sha256_file(bundle / name)
    path.write_text(json.dumps(manifest))


def _load_error(bundle: Path) -> str:
    with pytest.raises(BundleError) as info:
        Explainer.load(bundle)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_missing_directory(tmp_path: Path) -> None:
    assert "is not a bundle directory" in _load_error(tmp_path / "nope")


@pytest.mark.parametrize("name", ["manifest.json", "features.tflite", "head.npz"])
def test_missing_file(bundle: Path, name: str) -> None:
    (bundle / name).unlink()
    message = _load_error(bundle)
    assert name in message and "missing" in message


def test_truncated_features_fail_the_checksum(bundle: Path) -> None:
    data = (bundle / "features.tflite").read_bytes()
    (bundle / "features.tflite").write_bytes(data[: len(data) // 2])
    message = _load_error(bundle)
    assert "features.tflite" in message and "checksum mismatch" in message


def test_corrupt_features_with_matching_checksum(bundle: Path) -> None:
    """Corrupt content that the manifest was (wrongly) updated for still fails, in the interpreter, clearly."""
    data = bytearray((bundle / "features.tflite").read_bytes())
    data[:64] = b"\x00" * 64
    (bundle / "features.tflite").write_bytes(bytes(data))
    _rehash(bundle, "features.tflite")
    message = _load_error(bundle)
    assert "features.tflite" in message and "not a loadable TFLite model" in message


def test_corrupt_head(bundle: Path) -> None:
    (bundle / "head.npz").write_bytes(b"PK\x03\x04 definitely not a zip")
    _rehash(bundle, "head.npz")
    message = _load_error(bundle)
    assert "head.npz" in message and "not a readable head file" in message


def test_unknown_format_version(bundle: Path) -> None:
    _edit_manifest(bundle, format_version=99)
    message = _load_error(bundle)
    assert "manifest.json" in message and "format version 99" in message


def test_manifest_not_json(bundle: Path) -> None:
    (bundle / "manifest.json").write_text("{ this is not json")
    assert "unreadable JSON" in _load_error(bundle)


@pytest.mark.parametrize(("case", "expected"), [
    ("manifest nested", "manifest.json: unreadable JSON (JSON nested too deeply)"),
    ("spec nested", "head.npz: not a readable head file (JSON nested too deeply)"),
])
def test_json_nested_too_deeply_is_one_line_naming_the_file(bundle: Path, case: str, expected: str) -> None:
    """100,000 levels of brackets, in manifest.json or in head.npz's spec (rehashed): the parser's RecursionError
    becomes the same one-line refusal as any other malformed JSON."""
    from bundle_mutations import crafted, rehash

    dict(crafted())[case](bundle)
    if case == "spec nested":
        rehash(bundle)
    assert _load_error(bundle).endswith(expected)


def test_manifest_feature_shape_mismatch(bundle: Path) -> None:
    _edit_manifest(bundle, feature_shape=[4, 4, 128])
    message = _load_error(bundle)
    assert "head.npz" in message and "(8, 8, 128)" in message and "(4, 4, 128)" in message


def test_tflite_shape_disagrees_with_manifest(bundle: Path, zoo: Path) -> None:
    """A features.tflite from another export (target pool4: (4, 4, 128)) next to this head and manifest."""
    shutil.copy(zoo / "bundles" / "fruit_pool" / "features.tflite", bundle / "features.tflite")
    _rehash(bundle, "features.tflite")
    message = _load_error(bundle)
    assert "features.tflite" in message and "gives features (4, 4, 128)" in message


def test_class_count_mismatch(bundle: Path) -> None:
    _edit_manifest(bundle, class_names=["Apfel", "Orange"])
    message = _load_error(bundle)
    assert "3 outputs" in message and "2 classes" in message


def test_unknown_manifest_key(bundle: Path) -> None:
    _edit_manifest(bundle, colour="red")
    assert "unknown key(s) colour" in _load_error(bundle)


def test_bad_frame_is_an_input_error(fruit_bundle: Path) -> None:
    from edge.errors import InputError

    ex = Explainer.load(fruit_bundle)
    for frame in (np.zeros((10, 10), np.uint8), np.zeros((10, 10, 4), np.uint8), np.zeros((0, 5, 3), np.uint8),
                  np.zeros((10, 10, 3), np.float32)):
        with pytest.raises(InputError):
            ex.explain(frame)


def test_unknown_method_and_class(fruit_bundle: Path) -> None:
    from edge.errors import MethodError

    ex = Explainer.load(fruit_bundle)
    frame = np.full((50, 60, 3), 128, np.uint8)
    with pytest.raises(MethodError, match="unknown CAM method"):
        ex.explain(frame, method="nonsense")
    with pytest.raises(MethodError, match="knows 3 classes: Apfel, Orange, Tomate"):
        ex.explain(frame, target="Banane")


def _truncate(bundle: Path) -> None:
    data = (bundle / "features.tflite").read_bytes()
    (bundle / "features.tflite").write_bytes(data[: len(data) // 2])


def _corrupt_rehashed(bundle: Path) -> None:
    (bundle / "features.tflite").write_bytes(b"\0" * 4096)
    _rehash(bundle, "features.tflite")


BROKEN = {
    "missing head.npz": (lambda b: (b / "head.npz").unlink(), "head.npz"),
    "truncated features": (_truncate, "features.tflite: checksum mismatch"),
    "corrupt features": (_corrupt_rehashed, "features.tflite"),
    "format version": (lambda b: _edit_manifest(b, format_version=99), "manifest.json: format version 99"),
    "class count": (lambda b: _edit_manifest(b, class_names=["Apfel", "Orange"]), "2 classes"),
    "feature shape": (lambda b: _edit_manifest(b, feature_shape=[3, 3, 7]), "but the manifest says (3, 3, 7)"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(BROKEN))
def test_edge_run_refuses_a_broken_bundle_in_one_line(bundle: Path, tmp_path: Path, case: str) -> None:
    """What the service sees: exit 2 (systemd's start limit then stops a restart loop), one line, no traceback."""
    from conftest import run_python

    breaks, expected = BROKEN[case]
    breaks(bundle)
    proc = run_python("-m", "edge", "run", "--model", str(bundle), "--source", "synthetic", "--no-display",
                      "--max-frames", "1", timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and lines[-1].startswith("edge: error:"), proc.stderr[-2000:]
    assert expected in lines[-1], lines[-1]
