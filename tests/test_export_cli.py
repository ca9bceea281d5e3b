"""tools.export as a new user with an ImageNet-style model meets it: a classes file, a float16 head, a quiet
terminal, a grouped --list-layers, and a SqueezeNet classifier named in the error."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import run_python

from edge.explain.head import Head
from edge.explain.head_ops import Dense
from edge.explain.open_bundle import read_manifest
from tools.export.quiet import NOISE

SYNSETS = "n07739125 apple\nn07747607 orange, Citrus sinensis\nn07739125 apple\n"


def test_classes_file_and_float16_head(zoo: Path, tmp_path: Path) -> None:
    """Exported with ImageNet synset lines (a duplicate among them) and a float16 head: names made unique, the head
    half the size, the success line short, no TensorFlow noise; verify passes and shows what float16 costs."""
    classes = tmp_path / "synsets.txt"
    classes.write_text(SYNSETS, encoding="utf-8")
    bundle = tmp_path / "fruit16"
    proc = run_python("-m", "tools.export", str(zoo / "models" / "fruit.keras"), "--out", str(bundle),
                      "--target-layer", "bn4", "--classes-file", str(classes), "--head-dtype", "float16", "--no-check")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "3 classes: apple, orange, apple_2" in proc.stdout and "(float16, " in proc.stdout
    assert "duplicate class name(s) made unique: 'apple' -> 'apple_2'" in proc.stderr
    assert not [line for line in proc.stderr.splitlines() if NOISE.match(line)], proc.stderr[-2000:]
    manifest = read_manifest(bundle)
    assert manifest.class_names == ("apple", "orange", "apple_2") and manifest.head_dtype == "float16"
    with np.load(bundle / "head.npz") as npz:
        assert {npz[n].dtype for n in npz.files if n.endswith(".kernel")} == {np.dtype(np.float16)}
    float32_size = (zoo / "bundles" / "fruit_bn" / "head.npz").stat().st_size
    assert (bundle / "head.npz").stat().st_size < 0.55 * float32_size
    head = Head.load(bundle / "head.npz")
    dense = [op for op in head.ops if isinstance(op, Dense)]
    assert all(op.kernel.dtype == np.float32 for op in dense)  # computed in float32
    assert dense[0].spatial_sum is not None  # the sums of the rounded kernel, so the fast path stays exact
    k = dense[0].spatial_sum.shape[0]
    np.testing.assert_allclose(dense[0].spatial_sum, dense[0].kernel.reshape(-1, k, dense[0].kernel.shape[1]).sum(0),
                               rtol=1e-5, atol=1e-5)

    images = tmp_path / "images"
    images.mkdir()
    with np.load(zoo / "refs" / "fruit_bn.npz") as ref:
        for i, frame in enumerate(ref["frames"]):
            cv2.imwrite(str(images / f"{i}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    runs = {}
    for name, path in (("float16", bundle), ("float32", zoo / "bundles" / "fruit_bn")):
        proc = run_python("-m", "tools.verify", str(path), "--model", str(zoo / "models" / "fruit.keras"),
                          "--images", str(images), "--json", "--sheet", str(tmp_path / f"{name}.png"))
        assert proc.returncode == 0, proc.stderr[-2000:]
        runs[name] = json.loads(proc.stdout)
    assert runs["float16"]["head_dtype"] == "float16"
    # float16 weights cost more than float32 rounding: reported, and judged on agreement rather than exactness
    cost = runs["float16"]["head"]["logit"]["max_rel_cam_raw_diff"]
    assert cost > 10 * runs["float32"]["head"]["logit"]["max_rel_cam_raw_diff"] and cost > 1e-5
    assert runs["float16"]["tolerances"]["head_rule"] == "agreement"
    assert runs["float32"]["tolerances"]["head_rule"] == "exact"
    assert runs["float16"]["head"]["logit"]["mean_heatmap_correlation"] >= 0.999


def test_gap_head_stores_no_cam_weights_and_load_derives_them(zoo: Path) -> None:
    """GAP -> Dense: head.npz holds the kernel only; Head.load gives the CAM weights, equal to the mean gradient."""
    path = zoo / "bundles" / "mobilenet_gap" / "head.npz"
    with np.load(path) as npz:
        assert "cam_weights" not in npz.files
        stored = sum(npz[n].nbytes for n in npz.files if n != "spec")
    head = Head.load(path)
    assert head.cam_weights is not None
    kernel = next(op for op in head.ops if isinstance(op, Dense)).kernel
    assert stored < kernel.nbytes * 1.1  # not twice the kernel
    A = np.random.default_rng(0).random(head.input_shape, dtype=np.float32)
    hp = head.forward(A)
    for c in range(head.num_classes):
        dz = np.eye(head.num_classes, dtype=np.float32)[c]
        np.testing.assert_allclose(head.cam_weights[:, c], head.gradient(hp, dz).mean(axis=(0, 1)), rtol=1e-5,
                                   atol=1e-7)


def test_list_layers_puts_usable_targets_first(zoo: Path) -> None:
    model = str(zoo / "models" / "mobilenet_top.keras")
    proc = run_python("-m", "tools.export", model, "--list-layers")
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("usable target layers (")
    usable = int(lines[0].split("(")[1].split(";")[0])
    assert 1 <= usable <= 3 and sum(line.startswith("  *") for line in lines[1:usable + 1]) == 1
    assert "out_relu" in "".join(lines[1:usable + 1])
    summary = [line for line in lines if "joins several inputs" in line]
    assert len(summary) == 1 and int(summary[0].split()[0]) > 50, proc.stdout  # one line for the residual blocks
    assert len(lines) < 15
    every = run_python("-m", "tools.export", model, "--list-layers", "--all")
    assert every.returncode == 0 and len(every.stdout.splitlines()) > 100
    assert sum("joins several inputs" in line for line in every.stdout.splitlines()) > 50


SQUEEZENET = """
import keras, sys
x = inputs = keras.Input((32, 32, 3))
x = keras.layers.Conv2D(16, 3, activation="relu", name="fire")(x)
x = keras.layers.Conv2D(10, 1, name="conv10")(x)
x = keras.layers.Activation("relu", name="relu_conv10")(x)
x = keras.layers.GlobalAveragePooling2D(name="pool10")(x)
x = keras.layers.Activation("softmax", name="loss")(x)
keras.Model(inputs, x).save(sys.argv[1])
"""


def test_squeezenet_classifier_is_named(tmp_path: Path) -> None:
    model = tmp_path / "squeeze.keras"
    assert run_python("-c", SQUEEZENET, str(model)).returncode == 0
    for extra in ([], ["--target-layer", "fire"]):
        proc = run_python("-m", "tools.export", str(model), "--out", str(tmp_path / "b"), "--no-check", *extra)
        assert proc.returncode == 2
        error = proc.stderr.strip().splitlines()[-1]
        assert error.startswith("error:") and "'conv10'" in error and "1x1 Conv2D" in error, (extra, error)
        assert "GlobalAveragePooling2D -> Dense" in error


def test_calibration_warns_when_it_finds_fewer_images(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from edge.explain.bundle import Preprocess
    from edge.explain.preprocess import Preprocessor
    from tools.export.keras.feature_export import calibration_inputs

    for i in range(3):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.full((8, 8, 3), 40 * i, np.uint8))
    preprocess = Preprocessor(Preprocess(), (8, 8, 3))
    with caplog.at_level(logging.WARNING):
        assert len(calibration_inputs(tmp_path, preprocess, 3)) == 3
    assert "fewer than" not in caplog.text
    with caplog.at_level(logging.WARNING):
        assert len(calibration_inputs(tmp_path, preprocess, 200)) == 3
    assert "calibrating int8 on 3 image(s), fewer than the 200 asked for (--calibration-count)" in caplog.text
