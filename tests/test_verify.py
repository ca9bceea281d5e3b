"""tools.verify tells the truth: exact bundles pass with both checks reported, bundles made wrong on purpose fail
with the check that caught them named, and a float16 head passes with its cost shown."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from conftest import run_python, zoo_frames

from edge.explain import bundle as bundle_format
from edge.explain.bundle_check import sha256_file
from tools.export.quiet import NOISE


def _verify(zoo: Path, bundle: Path, images: Path, *extra: str) -> tuple[int, str, str]:
    proc = run_python("-m", "tools.verify", str(bundle), "--model", str(zoo / "models" / "fruit.keras"),
                      "--images", str(images), "--sheet", str(images.parent / "sheet.png"), *extra)
    return proc.returncode, proc.stdout, proc.stderr


def _copy(zoo: Path, tmp_path: Path, name: str) -> Path:
    bundle = tmp_path / name
    shutil.copytree(zoo / "bundles" / "fruit_bn", bundle)
    return bundle


def _rewrite_manifest(bundle: Path, **changes: object) -> None:
    path = bundle / bundle_format.MANIFEST
    raw = json.loads(path.read_text(encoding="utf-8"))
    raw.update(changes)
    raw["files"] = {name: sha256_file(bundle / name) for name in raw["files"]}
    path.write_text(json.dumps(raw), encoding="utf-8")


def test_exact_bundle_passes_with_both_checks_reported(zoo: Path, tmp_path: Path) -> None:
    code, out, err = _verify(zoo, zoo / "bundles" / "fruit_bn", zoo_frames(zoo, "fruit_bn", tmp_path / "images"))
    assert code == 0, err[-2000:]
    assert "(a) head on TensorFlow's own activations" in out and "(b) TFLite features vs TensorFlow's" in out
    assert out.count("PASS") == 6 and "FAIL" not in out
    assert out.strip().splitlines()[-1].startswith("PASS: the head is exact")
    assert not [line for line in err.splitlines() if NOISE.match(line)], "TensorFlow's start-up noise reached stderr"


def test_perturbed_head_fails_the_head_check(zoo: Path, tmp_path: Path) -> None:
    """A head off by 1% in one Dense kernel: (a) fails and says what it means; (b) still passes."""
    bundle = _copy(zoo, tmp_path, "perturbed")
    with np.load(bundle / bundle_format.HEAD) as npz:
        arrays = {name: npz[name] for name in npz.files}
    kernels = sorted(name for name in arrays if name.endswith(".kernel"))
    arrays[kernels[-1]] = arrays[kernels[-1]] * np.float32(1.01)  # the classifier, 1% larger
    np.savez(bundle / bundle_format.HEAD, **arrays)
    _rewrite_manifest(bundle)
    code, out, err = _verify(zoo, bundle, zoo_frames(zoo, "fruit_bn", tmp_path / "images"), "--json")
    assert code == 1, err[-2000:]
    report = json.loads(out)
    assert not report["head_passed"] and report["feature_drift"]["passed"]
    code, out, _ = _verify(zoo, bundle, tmp_path / "images")
    assert code == 1 and "FAIL head:" in out and "FAIL features" not in out


def test_swapped_channel_order_fails_the_feature_check(zoo: Path, tmp_path: Path) -> None:
    """A bundle whose manifest says BGR for a model trained on RGB, checked against the model's own convention."""
    bundle = _copy(zoo, tmp_path, "bgr")
    raw = json.loads((bundle / bundle_format.MANIFEST).read_text(encoding="utf-8"))
    _rewrite_manifest(bundle, preprocess={**raw["preprocess"], "channel_order": "BGR"})
    images = zoo_frames(zoo, "fruit_bn", tmp_path / "images")
    code, out, err = _verify(zoo, bundle, images, "--preprocess", "unit", "--json")
    assert code == 1, err[-2000:]
    report = json.loads(out)
    assert report["head_passed"] and not report["feature_drift"]["passed"]
    assert report["feature_drift"]["max_rel"] > 100 * report["tolerances"]["features"]
    code, out, _ = _verify(zoo, bundle, images, "--preprocess", "unit")
    assert code == 1 and "FAIL features:" in out and "--channel-order" in out and "FAIL head" not in out
    # the bundle as exported, against the same stated convention, passes: the check is the channel order
    code, _, err = _verify(zoo, zoo / "bundles" / "fruit_bn", images, "--preprocess", "unit")
    assert code == 0, err[-2000:]


def test_tolerance_option_scales_the_judgement(zoo: Path, tmp_path: Path) -> None:
    images = zoo_frames(zoo, "fruit_bn", tmp_path / "images")
    code, out, err = _verify(zoo, zoo / "bundles" / "fruit_bn", images, "--json", "--tolerance", "1e-9")
    assert code == 1, err[-2000:]
    strict = json.loads(out)
    code, out, _ = _verify(zoo, zoo / "bundles" / "fruit_bn", images, "--json")
    default = json.loads(out)
    assert strict["tolerances"]["features"] == default["tolerances"]["features"] * 1e-9
    code, _, err = _verify(zoo, zoo / "bundles" / "fruit_bn", images, "--tolerance", "0")
    assert code == 2 and "--tolerance must be a positive factor" in err
