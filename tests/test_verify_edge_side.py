"""tools.verify's device half (tools/verify/edge_side.py) in pytest's own process, without TensorFlow: what it writes
for the frames and TensorFlow's activations it is given, against the zoo's TensorFlow references; its refusals; and
run(), the subprocess wrapper verify() calls. In-process, so that mutation testing selects these tests."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest
from comparisons import rel_diff, rel_diff_up_to_positive_scale

from edge import Explainer
from tools.verify import edge_side

SCORES = ("logit", "probability")


def _inputs(zoo: Path, path: Path, targets: dict[str, np.ndarray] | None = None,
            case: str = "fruit_bn") -> dict[str, np.ndarray]:
    """The first two of the zoo's frames of `case`, TensorFlow's activations and classes, written where main() reads
    them; returns the references."""
    with np.load(zoo / "refs" / f"{case}.npz") as npz:
        ref = {name: npz[name][:2] for name in npz.files}
    targets = targets or {score: ref[f"{score}_class_index"] for score in SCORES}
    np.savez(path, frame_0=ref["frames"][0], frame_1=ref["frames"][1], tf_activations=ref["logit_activations"],
             **{f"{score}_targets": np.asarray(t, np.int64) for score, t in targets.items()})
    return ref


def test_main_writes_the_device_path_and_the_head_on_tensorflows_activations(fruit_bundle: Path, zoo: Path,
                                                                              tmp_path: Path) -> None:
    ref = _inputs(zoo, tmp_path / "in.npz")
    out_path = tmp_path / "out.npz"
    assert edge_side.main([str(fruit_bundle), str(tmp_path / "in.npz"), str(out_path)]) == 0  # Grad-CAM, both scores
    with np.load(out_path) as npz:
        out = {name: npz[name] for name in npz.files}
    assert set(out) == {"features", *(f"{score}_{part}" for score in SCORES for part in (
        "probabilities", "cam_raw", "head_probabilities", "head_cam_raw"))}
    assert out["features"].shape == (2, 8, 8, 128) and rel_diff(out["features"], ref["logit_activations"]) < 1e-4
    for score in SCORES:
        # the head alone, on TensorFlow's own activations: TensorFlow's Grad-CAM and probabilities
        assert rel_diff(out[f"{score}_head_cam_raw"], ref[f"{score}_method_gradcam"]) < 1e-4
        np.testing.assert_allclose(out[f"{score}_head_probabilities"], ref[f"{score}_probabilities"], atol=1e-6)
        # the device path from the frames: the same within the features' drift
        assert rel_diff(out[f"{score}_cam_raw"], ref[f"{score}_method_gradcam"]) < 1e-2
        np.testing.assert_allclose(out[f"{score}_probabilities"], ref[f"{score}_probabilities"], atol=1e-4)
    assert not np.allclose(out["logit_head_cam_raw"], out["probability_head_cam_raw"])  # each score its own


def test_the_given_classes_are_explained_with_the_given_method(fruit_bundle: Path, zoo: Path, tmp_path: Path) -> None:
    """Not the top class: TensorFlow's (here one that is not the top class for either frame), by the asked method."""
    other = {score: np.array([2, 0]) for score in SCORES}
    ref = _inputs(zoo, tmp_path / "in.npz", other)
    assert edge_side.main([str(fruit_bundle), str(tmp_path / "in.npz"), str(tmp_path / "o.npz"), "--method", "layercam",
                           "--scores", "probability"]) == 0
    with np.load(tmp_path / "o.npz") as out:
        assert set(out.files) == {"features", "probability_probabilities", "probability_cam_raw",
                                  "probability_head_probabilities", "probability_head_cam_raw"}
        ex = Explainer.load(fruit_bundle, score="probability")
        for i, c in enumerate(other["probability"]):
            expected = ex.explain(ref["frames"][i], target=int(c), method="layercam").cam_raw
            np.testing.assert_array_equal(out["probability_cam_raw"][i], expected)


@pytest.mark.parametrize("case", ["mobilenet_gap", "gap_negative"])
def test_cam_reads_the_class_from_the_context(zoo: Path, tmp_path: Path, case: str) -> None:
    """CAM (Zhou et al., GAP heads) takes the class's Dense weights, not the score's gradient: on a GAP -> Dense head
    its raw map is Grad-CAM's times a positive scale (h * w for the logit). Raw maps, since a map negative in every
    cell normalises to zeros (gap_negative: every map is so) and would compare nothing."""
    ref = _inputs(zoo, tmp_path / "in.npz", case=case)
    assert edge_side.main([str(zoo / "bundles" / case), str(tmp_path / "in.npz"), str(tmp_path / "c.npz"),
                           "--method", "cam", "--scores", "logit"]) == 0
    with np.load(tmp_path / "c.npz") as out:
        cams = out["logit_head_cam_raw"]
    if case == "gap_negative":
        assert (ref["logit_method_gradcam"] < 0).all() and (cams < 0).all()
    for cam, expected in zip(cams, ref["logit_method_gradcam"], strict=True):
        assert rel_diff_up_to_positive_scale(cam, expected) < 1e-4


def test_main_names_itself_in_its_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        edge_side.main(["--no-such-option"])
    assert capsys.readouterr().err.startswith("usage: python -m tools.verify.edge_side [-h]")


def test_main_refuses_a_process_with_tensorflow_and_a_bundle_it_cannot_load(
        zoo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _inputs(zoo, tmp_path / "in.npz")
    args = [str(tmp_path / "no_bundle"), str(tmp_path / "in.npz"), str(tmp_path / "o.npz")]
    assert edge_side.main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(tmp_path / "no_bundle") in err and err.count("\n") == 1
    assert not (tmp_path / "o.npz").exists()
    monkeypatch.setitem(sys.modules, "tensorflow", types.ModuleType("tensorflow"))
    with pytest.raises(SystemExit, match=r"^edge side: TensorFlow is imported in this process; the TFLite runtime "
                                         r"would break$"):
        edge_side.main(args)


def test_run_gives_what_main_writes_and_the_failures_last_line(fruit_bundle: Path, zoo: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    ref = _inputs(zoo, tmp_path / "in.npz")
    monkeypatch.chdir(tmp_path)  # run() works from any directory
    targets = {score: [int(c) for c in ref[f"{score}_class_index"]] for score in SCORES}
    out = edge_side.run(fruit_bundle, list(ref["frames"]), ref["logit_activations"].astype(np.float64), targets,
                        "hirescam")
    assert edge_side.main([str(fruit_bundle), str(tmp_path / "in.npz"), str(tmp_path / "o.npz"), "--method",
                           "hirescam"]) == 0
    with np.load(tmp_path / "o.npz") as expected:
        assert set(out) == set(expected.files)
        for name in expected.files:
            np.testing.assert_array_equal(out[name], expected[name])
    only_logit = edge_side.run(fruit_bundle, list(ref["frames"]), ref["logit_activations"],
                               {"logit": targets["logit"]}, "gradcam")
    assert not any(name.startswith("probability") for name in only_logit)
    with pytest.raises(edge_side.EdgeSideError, match=rf"^error: .*{tmp_path.name}.*no_bundle"):
        edge_side.run(tmp_path / "no_bundle", list(ref["frames"]), ref["logit_activations"], targets, "gradcam")
    monkeypatch.setattr(sys, "executable", "/bin/false")  # a process that dies without a word
    with pytest.raises(edge_side.EdgeSideError, match=r"^edge side exited with 1$"):
        edge_side.run(fruit_bundle, list(ref["frames"]), ref["logit_activations"], targets, "gradcam")
