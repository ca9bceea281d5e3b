"""The bench's inputs, built once and cached in build/bench: a MobileNetV2-224 bundle, int8 re-exports, frame sets."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

from tools.bench.processes import ENV, REPO, run_tool

# Bench models, one per head form (tools/bench/head_forms.py; random weights: timing only): name -> (the builder,
# the export's --preprocess preset, what the README calls the head form).
HEAD_FORMS: dict[str, tuple[str, str, str]] = {
    "flatten_cnn": ("flatten_cnn", "unit", "Flatten -> Dense 128 -> Dense 3"),
    "flatten_bn_dropout_cnn": ("flatten_bn_dropout_cnn", "unit", "Flatten -> Dense 128 -> BN -> Dropout -> Dense 3"),
    "mobilenetv2_224": ("mobilenetv2_gap", "symmetric", "GAP -> Dense 3"),
    "mobilenetv2_224_relu6": ("mobilenetv2_relu6", "symmetric", "GAP -> Dense 128 -> ReLU6 -> Dense 3"),
    "mobilenetv2_224_hardswish": ("mobilenetv2_hardswish", "symmetric", "GAP -> Dense 128 -> Hardswish -> Dense 3"),
}


def head_form_bundle(work: Path, name: str) -> tuple[Path, Path]:
    """(bundle, .keras model) of one HEAD_FORMS model, built once and exported with tools.export's defaults."""
    builder, preset, _ = HEAD_FORMS[name]
    bundle, model = work / name, work / f"{name}.keras"
    if _stale(bundle, REPO / "tools" / "bench" / "head_forms.py"):
        build = f"from tools.bench import head_forms; head_forms.{builder}().save({str(model)!r})"
        subprocess.run([sys.executable, "-c", build], check=True, cwd=REPO, capture_output=True, env=ENV)
        subprocess.run([sys.executable, "-m", "tools.export", str(model), "--out", str(bundle), "--preprocess",
                        preset, "--classes", "Apfel,Orange,Tomate", "--no-check"], check=True, cwd=REPO,
                       capture_output=True, env=ENV)
    return bundle, model


def mobilenet_bundle(work: Path) -> tuple[Path, Path]:
    return head_form_bundle(work, "mobilenetv2_224")


MINI = REPO / "tests" / "data" / "fruits360-mini"  # real Fruits-360 fruit in the repo: the bench runs on a fresh clone


def frame_sets(work: Path) -> tuple[Path, Path]:
    """Composited camera-like frames of the repo's Fruits-360 subset: training backgrounds for int8 calibration,
    evaluation backgrounds and held-out fruit for the float/int8 comparison."""
    calibration, compare = work / "calibration", work / "compare"
    if not any(calibration.glob("*.jpg")):
        run_tool(["-m", "tools.data.samples", str(MINI), "--split", "train", "--backgrounds", "train",
                  "--frames", "200", "--out", str(calibration)])
    if not any(compare.glob("*.jpg")):
        run_tool(["-m", "tools.data.samples", str(MINI), "--split", "test", "--backgrounds", "eval", "--frames", "200",
                  "--seed", "99", "--out", str(compare)])
    return calibration, compare


# The workstation code a cached bench bundle was made by: a change to any of it makes the cache stale.
EXPORT_CODE = ("tools/export/**/*.py", "tools/keras_support/*.py")


def _stale(out: Path, *inputs: Path) -> bool:
    """True (and the stamp updated for the caller to rebuild) unless out was built from these very inputs and code."""
    digest = hashlib.sha256()
    for path in (*inputs, *sorted(p for pattern in EXPORT_CODE for p in REPO.glob(pattern))):
        digest.update(path.read_bytes() if path.is_file() else str(path).encode())
    stamp = out.with_name(out.name + ".built-from")
    if stamp.exists() and stamp.read_text() == digest.hexdigest() and (out / "manifest.json").exists():
        return False
    shutil.rmtree(out, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(digest.hexdigest())
    return True


def int8_bundle(model: Path, bundle: Path, out: Path, calibration: Path) -> Path:
    """The float bundle's model exported again with full-integer features (same target, score and preprocessing)."""
    if _stale(out, model, bundle / "manifest.json"):
        manifest = json.loads((bundle / "manifest.json").read_text())
        scale = manifest["preprocess"]["scale"][0]
        preset = "unit" if abs(scale - 1 / 255) < 1e-9 else "symmetric"  # the two presets the bench's bundles use
        run_tool(["-m", "tools.export", str(model), "--out", str(out), "--classes", ",".join(manifest["class_names"]),
               "--preprocess", preset, "--target-layer", manifest["target_layer"], "--quantize", "int8",
               "--calibration", str(calibration), "--calibration-count", "100", "--no-check"])
    return out
