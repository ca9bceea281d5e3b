"""tools.verify around its verdict, without TensorFlow: the reference inputs, the stated input convention, the
command line and its one-line refusals, the report (printed, as JSON, with its contact sheet) and the --help that
docs/verify.md shows; on made-up references and edge outputs (tests/verify_made_up.py). In-process, so that mutation
testing selects these tests."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from verify_made_up import TOL, N, exact_edge, made_up_refs, nudged

from edge.explain.bundle import FeatureModel, Manifest, Preprocess
from tools.verify import report_text, verifier


@pytest.mark.parametrize("resize,interpolation", [("bilinear", cv2.INTER_LINEAR), ("area", cv2.INTER_AREA),
                                                  ("nearest", cv2.INTER_NEAREST)])
def test_reference_inputs_follow_the_spec_not_the_preprocessor(resize: str, interpolation: int) -> None:
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, (9, 13, 3), np.uint8) for _ in range(2)]
    spec = Preprocess(channel_order="BGR", scale=(0.5, 0.25, 2.0), offset=(-1.0, 0.0, 3.0), resize=resize)
    x = verifier.reference_inputs(images, spec, (4, 6, 3))
    assert x.shape == (2, 4, 6, 3) and x.dtype == np.float32
    for xi, image in zip(x, images, strict=True):
        bgr = cv2.resize(image, (6, 4), interpolation=interpolation)[..., ::-1].astype(np.float32)
        assert np.array_equal(xi, bgr * np.float32([0.5, 0.25, 2.0]) + np.float32([-1.0, 0.0, 3.0]))
    rgb = verifier.reference_inputs(images, Preprocess(resize=resize), (4, 6, 3))
    assert np.array_equal(rgb[0], cv2.resize(images[0], (6, 4), interpolation=interpolation).astype(np.float32))


def test_the_stated_convention_needs_preprocess_and_channel_order_together() -> None:
    def args(preprocess: str | None, order: str | None) -> argparse.Namespace:
        return argparse.Namespace(preprocess=preprocess, channel_order=order)

    assert verifier._convention(args(None, None), 3) is None
    with pytest.raises(verifier.VerifyError) as refused:
        verifier._convention(args(None, "BGR"), 3)
    assert str(refused.value) == "--channel-order needs --preprocess too (the model's whole input convention)"
    caffe = verifier._convention(args("unit", "BGR"), 3)
    assert caffe is not None and caffe.channel_order == "BGR" and caffe.scale == pytest.approx((1 / 255,) * 3)


def test_command_line_defaults_and_refusals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = verifier._parser().parse_args(["b", "--model", "m.keras", "--images", "dir"])
    assert (args.bundle, args.model, args.images) == (Path("b"), Path("m.keras"), Path("dir"))
    assert (args.limit, args.method, args.tolerance, args.json, args.sheet, args.weights) == (
        32, "gradcam", 1.0, False, None, None)
    assert (args.preprocess, args.channel_order) == (None, None)
    parsed = verifier._parser().parse_args(["b", "--model", "m", "--images", "d", "--limit", "5", "--json",
                                            "--method", "gradcampp", "--tolerance", "2.5", "--channel-order", "BGR",
                                            "--preprocess", "caffe", "--weights", "w.h5", "--sheet", "s.png"])
    assert (parsed.limit, parsed.json, parsed.method, parsed.tolerance, parsed.channel_order, parsed.preprocess,
            parsed.weights, parsed.sheet) == (5, True, "gradcampp", 2.5, "BGR", "caffe", Path("w.h5"), Path("s.png"))
    for missing in (["b", "--images", "d"], ["b", "--model", "m"]):
        with pytest.raises(SystemExit):
            verifier._parser().parse_args(missing)
    with pytest.raises(SystemExit):
        verifier._parser().parse_args(["b", "--model", "m", "--images", "d", "--method", "nope"])
    capsys.readouterr()
    base = [str(tmp_path / "no-bundle"), "--model", "m", "--images", str(tmp_path)]
    assert verifier.main([*base, "--tolerance", "0"]) == 2
    assert capsys.readouterr().err == "error: --tolerance must be a positive factor, got 0.0\n"
    assert verifier.main(base) == 2  # no bundle: one line, no traceback
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "no-bundle" in err


def test_the_report_says_what_was_compared_and_draws_the_sheet_on_request(tmp_path: Path) -> None:
    refs = made_up_refs()
    edge = exact_edge(refs)
    manifest = Manifest(class_names=("Apfel", "Orange", "Tomate"), input_shape=(8, 8, 3), feature_shape=(4, 4, 8),
                        target_layer="conv4", head_dtype="float32")
    images = [np.full((24, 32, 3), 60 * i, np.uint8) for i in range(N)]
    checked = verifier.Checked(Path("fruit_bundle"), Path("fruit.keras"), manifest,
                               [tmp_path / f"img_{i}.png" for i in range(N)], images)
    out = verifier.report(checked, refs, edge, "gradcam", TOL, None, None)
    assert {k: out[k] for k in ("bundle", "model", "features", "head_dtype", "method", "passed")} == {
        "bundle": "fruit_bundle", "model": "fruit.keras", "features": manifest.features.dtype,
        "head_dtype": "float32", "method": "gradcam", "passed": True}
    assert "preprocess_mismatch" not in out and "contact_sheet" not in out and out["reference"] == "TensorFlow"
    for torch_side in ("models/r18.onnx", "my_model.py:build"):
        other = dataclasses.replace(checked, model=Path(torch_side))
        assert verifier.report(other, refs, edge, "gradcam", TOL, None, None)["reference"] == "PyTorch"
    assert "preprocess_mismatch" not in verifier.report(checked, refs, edge, "gradcam", TOL, Preprocess(), None)
    bgr = Preprocess(channel_order="BGR")
    mismatch = verifier.report(checked, refs, edge, "gradcam", TOL, bgr, None)["preprocess_mismatch"]
    assert mismatch == {"manifest": dataclasses.asdict(Preprocess()), "given": dataclasses.asdict(bgr)}
    sheets = []
    for n in (2, N):
        sheet = tmp_path / f"sheet{n}.png"
        few = verifier.Checked(checked.bundle, checked.model, manifest, checked.paths[:n], images[:n])
        cut = {score: rs[:n] for score, rs in refs.items()}
        assert verifier.report(few, cut, {k: v[:n] for k, v in edge.items()}, "gradcam", TOL, None,
                               sheet)["contact_sheet"] == str(sheet)
        sheets.append(cv2.imread(str(sheet)))
    assert sheets[0] is not None and sheets[1] is not None
    assert sheets[0].shape[1] == sheets[1].shape[1] and sheets[0].shape[0] < sheets[1].shape[0]  # a row per image
    # the drawing is of sheet_rows() with the edge side's logit maps (normalised) and the method, under its title
    from tools.common import contact_sheet

    cams = np.stack([verifier.normalise(c) for c in edge["logit_cam_raw"]])
    rows = verifier.sheet_rows(checked.paths, images, edge["logit_probabilities"], cams, list(manifest.class_names),
                               "gradcampp")
    contact_sheet.write_sheet(tmp_path / "expected.png", rows, title=verifier.sheet_title("gradcampp"))
    verifier.report(checked, refs, edge, "gradcampp", TOL, None, tmp_path / "pp.png")
    assert np.array_equal(cv2.imread(str(tmp_path / "pp.png")), cv2.imread(str(tmp_path / "expected.png")))


def test_reference_inputs_round_like_float32_arithmetic() -> None:
    image = np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)
    spec = Preprocess(scale=(1 / 58.395, 1 / 57.12, 1 / 57.375), offset=(-2.1179, -2.0357, -1.8044))
    x = verifier.reference_inputs([image], spec, (5, 7, 3))[0]
    expected = image.astype(np.float32) * np.array(spec.scale, np.float32) + np.array(spec.offset, np.float32)
    assert x.dtype == np.float32 and np.array_equal(x, expected)


def test_a_one_channel_convention_has_one_value_per_channel() -> None:
    args = argparse.Namespace(preprocess="scale=0.5,offset=-1", channel_order=None)
    spec = verifier._convention(args, 1)
    assert spec is not None and spec.scale == (0.5,) and spec.offset == (-1.0,)


def test_the_report_of_an_int8_bundle_does_not_judge_its_features() -> None:
    refs = made_up_refs()
    edge = nudged(exact_edge(refs), "features", 0.1)
    manifest = Manifest(class_names=("a", "b", "c"), input_shape=(8, 8, 3), feature_shape=(4, 4, 8),
                        target_layer="conv4", features=FeatureModel(dtype="int8"))
    checked = verifier.Checked(Path("b"), Path("m"), manifest, [], [])
    out = verifier.report(checked, refs, edge, "gradcam", TOL, None, None)
    assert out["features"] == "int8" and out["passed"] and out["feature_drift"]["max_rel"] > TOL.features


def test_the_printed_report_and_the_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    refs = made_up_refs()
    manifest = Manifest(class_names=("a", "b", "c"), input_shape=(8, 8, 3), feature_shape=(4, 4, 8),
                        target_layer="conv4")
    checked = verifier.Checked(Path("b"), Path("m"), manifest, [], [])
    good = verifier.report(checked, refs, exact_edge(refs), "gradcam", TOL, None, None)
    bad = verifier.report(checked, refs, nudged(exact_edge(refs), "logit_head_cam_raw", 1.0), "gradcam", TOL, None,
                          None)
    assert verifier._print_report(good, as_json=True) == 0
    assert capsys.readouterr().out == json.dumps(good, indent=2) + "\n"
    assert verifier._print_report(bad, as_json=False) == 1
    assert capsys.readouterr().out == "\n".join(report_text.lines(bad)) + "\n"


def test_a_convention_the_bundle_cannot_take_is_one_line_before_tensorflow(
        fruit_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = [str(fruit_bundle), "--model", "m.keras", "--images", str(tmp_path)]
    assert verifier.main([*base, "--channel-order", "BGR"]) == 2
    assert capsys.readouterr().err == ("error: --channel-order needs --preprocess too (the model's whole input "
                                       "convention)\n")
    assert verifier.main([*base, "--preprocess", "bogus=1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --preprocess 'bogus=1': unknown field(s) bogus") and err.count("\n") == 1
    with pytest.raises(SystemExit):
        verifier._parser().parse_args([*base, "--channel-order", "XYZ"])


def test_with_debug_the_error_is_raised_with_its_traceback(fruit_bundle: Path, tmp_path: Path) -> None:
    with pytest.raises(verifier.VerifyError, match="--channel-order needs --preprocess"):
        verifier.main([str(fruit_bundle), "--model", "m.keras", "--images", str(tmp_path), "--channel-order", "BGR",
                       "--debug"])


def _readme_block(starting: str) -> str:
    """docs/verify.md's indented block whose first line starts with `starting`, dedented."""
    lines = (Path(__file__).resolve().parent.parent / "docs" / "verify.md").read_text(encoding="utf-8").splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("    " + starting))
    block = []
    for line in lines[first:]:
        if line and not line.startswith("    "):
            break
        block.append(line[4:])
    return "\n".join(block).strip() + "\n"


def test_the_readme_shows_what_help_prints(monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """Every option the command takes is in docs/verify.md with its help, and nothing else: the block is
    `python -m tools.verify --help`'s output (usage under the command's own name, the description, every option)."""
    monkeypatch.setenv("COLUMNS", "120")
    with pytest.raises(SystemExit) as done:
        verifier.main(["--help"])
    assert done.value.code == 0
    printed = capsys.readouterr().out
    assert printed.startswith("usage: python -m tools.verify [-h] --model MODEL")
    assert "\n".join(line.rstrip() for line in printed.splitlines()) + "\n" == _readme_block("usage: python -m tools.v")


def test_the_sheet_captions_each_image_by_name_its_heatmap_by_method_and_its_overlay_by_top1() -> None:
    from tools.common import contact_sheet

    rng = np.random.default_rng(5)
    images = [rng.integers(0, 256, (24, 32, 3), np.uint8) for _ in range(2)]  # (H, W) = (24, 32)
    probabilities = np.array([[0.1, 0.7, 0.2], [0.55, 0.05, 0.4]], np.float32)
    cams = rng.uniform(0, 1, (2, 4, 4)).astype(np.float32)
    rows = verifier.sheet_rows([Path("a/x.png"), Path("b/y.jpg")], images, probabilities, cams,
                               ["Apfel", "Orange", "Tomate"], "gradcampp")
    assert [[caption for _, caption in row] for row in rows] == [["x.png", "gradcampp", "Orange 0.70"],
                                                                ["y.jpg", "gradcampp", "Apfel 0.55"]]
    for row, image, cam in zip(rows, images, cams, strict=True):
        assert row[0][0] is image
        assert row[1][0].shape == (24, 32, 3) and np.array_equal(row[1][0], contact_sheet.heatmap_rgb(cam, (32, 24)))
        assert np.array_equal(row[2][0], contact_sheet.overlay_rgb(image, cam))
    assert verifier.sheet_title("eigencam").split(" | ") == ["original", "eigencam heatmap",
                                                             "overlay (edge, score=logit)"]


def test_a_pytorch_or_onnx_reference_needs_logits_and_an_onnx_model_its_own_weights(
        fruit_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The fruit bundle's model ends in softmax: the PyTorch and ONNX references (which take outputs as logits) refuse
    it in one line, before torch is imported; an .onnx or .pt2 model with --weights is refused first."""
    before = set(sys.modules)  # other tests in this process may have imported torch already: only new imports count
    images = tmp_path / "images"
    images.mkdir()
    cv2.imwrite(str(images / "a.png"), np.full((8, 8, 3), 90, np.uint8))
    base = [str(fruit_bundle), "--images", str(images), "--sheet", str(tmp_path / "s.png")]
    refusals = {("--model", "torchvision.models:resnet18"): "error: the PyTorch reference takes the model's outputs "
                "as logits; this bundle's model ends in softmax\n",
                ("--model", str(tmp_path / "m.onnx")): "error: the ONNX reference takes the model's outputs as "
                "logits; this bundle's model ends in softmax\n",
                ("--model", str(tmp_path / "m.onnx"), "--weights", "w.pth"): "error: an .onnx model holds its "
                "weights: drop --weights\n",
                ("--model", str(tmp_path / "m.pt2")): "error: the PyTorch reference takes the model's outputs as "
                "logits; this bundle's model ends in softmax\n",
                ("--model", str(tmp_path / "m.pt2"), "--weights", "w.pth"): "error: a .pt2 program holds its "
                "weights: drop --weights\n"}
    for extra, message in refusals.items():
        assert verifier.main([*base, *extra]) == 2
        assert capsys.readouterr().err == message
    assert not any(name.split(".")[0] in ("tensorflow", "torch") for name in set(sys.modules) - before)

