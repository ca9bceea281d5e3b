"""tools.verify run in pytest's own process, TensorFlow reference and all, so that mutation testing can select
verify()'s shell and main()'s call of it (tests/test_verify.py runs the same command in a subprocess, which mutmut
never selects). The one exception to conftest's rule that pytest's process never imports TensorFlow: tflite_runtime's
interpreter is loaded first, because TensorFlow loaded before it breaks it for the rest of the session
(ai_edge_litert works either way), and conftest runs these tests last. Two images per run to stay cheap."""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import cv2
import pytest
from conftest import perturbed_copy, zoo_frames

from tools.verify import report_text, tolerance, verifier

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def _tflite_before_tensorflow() -> Iterator[None]:
    with contextlib.suppress(ImportError):
        import tflite_runtime.interpreter  # noqa: F401 (loaded before TensorFlow: see the module's docstring)
    yield



def _derived(report: dict, scale: float) -> tolerance.Tolerances:
    t = report["tolerances"]
    return tolerance.Tolerances(t["accumulating_layers"], t["fan_in_sum"], t["head_fan_in_sum"], t["head_dtype"],
                                scale)


def _assert_exact(report: dict, images: int) -> None:
    """Both checks passed with every figure within its tolerance, on `images` images."""
    t = report["tolerances"]
    assert report["passed"] and report["head_passed"] and report["features_passed"]
    for m in report["head"].values():
        assert m["images"] == images and m["top1_agreement"] == 1.0 and m["mean_heatmap_correlation"] > 0.999
        assert m["max_rel_cam_raw_diff"] <= t["head"] and m["max_probability_diff"] <= t["head"]
    for m in report["scores"].values():
        assert m["images"] == images and m["top1_agreement"] == 1.0
        assert m["max_rel_cam_raw_diff"] <= 10 * t["features"] and m["max_probability_diff"] <= 10 * t["features"]
    assert 0 < report["feature_drift"]["max_rel"] <= t["features"]


def test_verify_judges_an_exported_bundle_with_its_defaults(zoo: Path, tmp_path: Path) -> None:
    """verify() itself, defaults taken: Grad-CAM, the manifest's convention, the derived tolerances, no sheet."""
    images = zoo_frames(zoo, "fruit_bn", tmp_path / "images")
    report = verifier.verify(zoo / "bundles" / "fruit_bn", zoo / "models" / "fruit.keras", None, images, 2, None)
    assert {k: report[k] for k in ("bundle", "model", "reference", "features", "head_dtype", "method")} == {
        "bundle": str(zoo / "bundles" / "fruit_bn"), "model": str(zoo / "models" / "fruit.keras"),
        "reference": "TensorFlow", "features": "float32", "head_dtype": "float32", "method": "gradcam"}
    _assert_exact(report, 2)
    assert report["tolerances"]["features"] == _derived(report, 1.0).features
    assert report["tolerances"]["head_rule"] == "exact" and report["tolerances"]["accumulating_layers"] == 4
    assert "contact_sheet" not in report and "preprocess_mismatch" not in report


def test_main_passes_its_arguments_and_draws_the_sheet_in_the_bundle(
        zoo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--limit, --method, --tolerance and --json reach the report; without --sheet the sheet is BUNDLE/verify.png."""
    bundle = tmp_path / "bundle"
    shutil.copytree(zoo / "bundles" / "fruit_bn", bundle)
    images = zoo_frames(zoo, "fruit_bn", tmp_path / "images")
    code = verifier.main([str(bundle), "--model", str(zoo / "models" / "fruit.keras"), "--images", str(images),
                          "--limit", "2", "--method", "gradcampp", "--tolerance", "3", "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    report = json.loads(out)
    assert report["method"] == "gradcampp" and report["bundle"] == str(bundle)
    assert report["tolerances"]["features"] == _derived(report, 3.0).features
    assert report["tolerances"]["head"] == 10 * _derived(report, 3.0).head  # Grad-CAM++'s factor
    for m in report["head"].values():
        assert m["images"] == 2 and m["passed"] and m["max_rel_cam_raw_diff"] <= report["tolerances"]["head"]
    assert report["contact_sheet"] == str(bundle / "verify.png")
    sheet = cv2.imread(report["contact_sheet"])
    assert sheet is not None and sheet.shape[0] > 2 * 100  # two rows of 100x100 images and their captions


def test_weights_reach_the_reference_and_the_text_report_is_printed(
        zoo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An architecture JSON needs --weights: given, the BGR bundle passes with the text report; without, one line."""
    images = zoo_frames(zoo, "json_weights", tmp_path / "images")
    base = [str(zoo / "bundles" / "json_weights"), "--model", str(zoo / "models" / "model_convnet.json"),
            "--images", str(images), "--limit", "2", "--sheet", str(tmp_path / "sheet.png")]
    code = verifier.main([*base, "--weights", str(zoo / "models" / "model_convnet.h5")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.splitlines()[0].endswith("method gradcam, 2 images")
    assert out.splitlines()[-1].startswith("PASS: the head is exact")
    assert f"contact sheet: {tmp_path / 'sheet.png'}" in out and (tmp_path / "sheet.png").is_file()
    assert verifier.main(base) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs its weights: add --weights" in err


def test_a_wrong_bundle_and_a_stated_convention_fail_by_name(
        zoo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A head off by 1% fails (a) with exit 1; --preprocess/--channel-order reach the reference (a BGR statement for
    the RGB model fails (b) and is noted as a mismatch with the manifest)."""
    bundle = perturbed_copy(zoo / "bundles" / "fruit_bn", tmp_path / "perturbed")
    images = zoo_frames(zoo, "fruit_bn", tmp_path / "images")
    model = str(zoo / "models" / "fruit.keras")
    code = verifier.main([str(bundle), "--model", model, "--images", str(images), "--limit", "2",
                          "--sheet", str(tmp_path / "s.png")])
    out = capsys.readouterr().out
    assert code == 1 and out.splitlines()[-1] == report_text.HEAD_FAILED
    code = verifier.main([str(zoo / "bundles" / "fruit_bn"), "--model", model, "--images", str(images), "--limit",
                          "2", "--sheet", str(tmp_path / "s.png"), "--preprocess", "unit", "--channel-order", "BGR",
                          "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and report["head_passed"] and not report["feature_drift"]["passed"]
    assert report["preprocess_mismatch"]["given"]["channel_order"] == "BGR"
    assert report["preprocess_mismatch"]["manifest"]["channel_order"] == "RGB"


def test_a_bundle_the_edge_side_cannot_load_is_one_line(
        zoo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """features.tflite changed after export: TensorFlow's side runs, the edge side refuses the bundle by its
    checksum, and main says so in one line (exit 2), naming the file."""
    bundle = tmp_path / "changed"
    shutil.copytree(zoo / "bundles" / "fruit_bn", bundle)
    with (bundle / "features.tflite").open("ab") as f:
        f.write(b"\0")
    images = zoo_frames(zoo, "fruit_bn", tmp_path / "images")
    code = verifier.main([str(bundle), "--model", str(zoo / "models" / "fruit.keras"), "--images", str(images),
                          "--limit", "1"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1
    assert "features.tflite" in err and "checksum" in err


def test_tolerances_count_each_accumulating_layer_by_its_fan_in() -> None:
    """Conv2D and Dense: the kernel's inputs per output (kh * kw * c_in, n_in); depthwise: kh * kw; separable: both
    steps. The target's feature model counts its layers, the head (after the target) only its sums."""
    import keras

    x = keras.Input((9, 9, 4))
    conv = keras.layers.Conv2D(8, (3, 2), name="conv")
    depthwise = keras.layers.DepthwiseConv2D((5, 3), name="depthwise")
    separable = keras.layers.SeparableConv2D(6, (3, 2), name="separable")
    dense = keras.layers.Dense(3, name="dense")
    a = separable(depthwise(conv(x)))
    model = keras.Model(x, dense(keras.layers.GlobalAveragePooling2D()(a)))
    assert tolerance._fan_ins(conv) == [3 * 2 * 4]
    assert tolerance._fan_ins(depthwise) == [5 * 3]
    assert tolerance._fan_ins(separable) == [3 * 2, 8]
    assert tolerance._fan_ins(dense) == [6]
    assert tolerance._fan_ins(model.layers[0]) == []
    tol = tolerance.derive(model, "separable", "float16", 2.0)
    assert tol == tolerance.Tolerances(layers=4, fan_in_sum=24 + 15 + 6 + 8, head_fan_in_sum=6, head_dtype="float16",
                                       user_scale=2.0)
    assert tolerance.derive(model, "separable", "float32").user_scale == 1.0
