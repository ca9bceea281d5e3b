"""The drift baseline and monitor on the demo model and the samples: one short scenario per kind of change, a
false-alarm run, and the baseline file's refusals (corrupt, another model, another map size, a failed save)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from edge.explain.drift_baseline import Baseline, BaselineError
from edge.explain.drift_monitor import DriftMonitor
from edge.explain.explainer import Explainer
from edge.service.cli import main
from tools.data.drift_scenarios import U8, load_images, scenario
from tools.evaluate.drift import Outcome, learn, run

REPO = Path(__file__).resolve().parent.parent
Demo = tuple[Explainer, list[U8], Baseline]


@pytest.fixture(scope="module")
def demo() -> Demo:
    explainer = Explainer.load(REPO / "models" / "fruit")
    images = load_images(REPO / "samples")
    return explainer, images, learn(explainer, images, 600, seed=1)


def _scenario(demo: Demo, kind: str, seed: int) -> Outcome:
    explainer, images, baseline = demo
    return run(explainer, baseline, images, kind, 150, 300, seed)


@pytest.mark.parametrize("kind, seed", [("moved", 3), ("background", 5), ("patch", 6)])
def test_an_explanation_change_is_an_explanation_alert_within_300_frames(demo: Demo, kind: str, seed: int) -> None:
    outcome = _scenario(demo, kind, seed)
    assert outcome.false_alarms == 0
    assert outcome.delay is not None and outcome.delay <= 300, outcome
    assert outcome.alert_kind == "explanation"


def test_a_moved_camera_is_named_as_moved(demo: Demo) -> None:
    assert _scenario(demo, "moved", 3).cause.startswith("moved")


def test_a_smudged_lens_is_blurred_input(demo: Demo) -> None:
    outcome = _scenario(demo, "smudged", 4)
    assert outcome.false_alarms == 0 and outcome.input == "blurred"
    assert outcome.alert_kind != "explanation"


def test_a_lighting_change_is_input_drift_not_an_explanation_drift(demo: Demo) -> None:
    outcome = _scenario(demo, "lighting", 7)
    assert outcome.false_alarms == 0 and outcome.input == "dark"
    assert outcome.alert_kind != "explanation"


def test_normal_frames_raise_no_alarm(demo: Demo) -> None:
    explainer, images, baseline = demo
    monitor = DriftMonitor(baseline)
    states = set()
    for frame in scenario(images, "normal", 1200, 0, seed=99):
        e = explainer.explain(frame)
        states.add(monitor.update(e.class_index, e.cam, frame).state)
    assert states == {"ok"}


def test_a_batch_update_leaves_the_monitor_as_frame_by_frame_updates_do(demo: Demo) -> None:
    """The service hands the monitor what arrived since its last poll as one batch (update_many): the running maps,
    label mix and frame statistics equal one update() per frame, and the alert comes within one batch of its frame."""
    explainer, images, baseline = demo
    frames = list(scenario(images, "moved", 120, 260, seed=3))
    seen = [(e.class_index, e.cam, frame) for e, frame in ((explainer.explain(f), f) for f in frames)]
    seen[5] = (seen[5][0], np.zeros_like(seen[5][1]), seen[5][2])  # an all-zero map counts as uniform in both
    one, many = DriftMonitor(baseline), DriftMonitor(baseline)
    first = [i for i, f in enumerate(seen) if one.update(*f).event == "alert"]
    sizes = np.random.default_rng(0).integers(1, 40, len(seen))
    start, batched = 0, []
    while start < len(seen):
        stop = min(len(seen), start + int(sizes[start]))
        if many.update_many(seen[start:stop]).event == "alert":
            batched.append(stop - 1)
        start = stop
    np.testing.assert_allclose(many.maps, one.maps, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(many.labels, one.labels, rtol=1e-9)
    np.testing.assert_allclose(many.frame, one.frame, rtol=1e-9)
    assert many.seen == one.seen and many.judged == one.judged
    zero = DriftMonitor(baseline)  # the first frame of a class is its whole running mean: a uniform map
    zero.update(seen[0][0], np.zeros_like(seen[0][1]), None)
    np.testing.assert_allclose(zero.maps[seen[0][0]], 1.0 / seen[0][1].size)
    assert first and batched and first[0] >= 120 and abs(batched[0] - first[0]) < 40, (first, batched)


def test_baseline_command_and_refusals(tmp_path: Path, demo: Demo, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "baseline.npz"
    assert main(["baseline", "--model", str(REPO / "models" / "fruit"), "--source", f"images:{REPO / 'samples'}",
                 "--frames", "12", "--out", str(out)]) == 0
    baseline = Baseline.load(out)
    assert baseline.counts.sum() == 12 and baseline.grid == (12, 12)
    baseline.check(out, demo[0].manifest.sha256, (12, 12))
    with pytest.raises(BaselineError, match="not this model"):
        baseline.check(out, "0" * 64, (12, 12))
    with pytest.raises(BaselineError, match="maps of 12x12 cells"):
        baseline.check(out, baseline.model_sha256, (7, 7))
    (tmp_path / "bad.npz").write_bytes(out.read_bytes()[:300])
    with pytest.raises(BaselineError, match="not a readable baseline"):
        Baseline.load(tmp_path / "bad.npz")


def test_a_failed_save_keeps_the_earlier_baseline(tmp_path: Path, demo: Demo) -> None:
    """A file size limit makes the write fail as a full disk does: the earlier file stays, no temporary is left."""
    out = tmp_path / "baseline.npz"
    demo[2].save(out)
    before = out.read_bytes()
    code = textwrap.dedent(f"""
        import resource, signal
        from edge.explain.drift_baseline import Baseline, BaselineError
        b = Baseline.load({str(out)!r})
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))
        try:
            b.save({str(out)!r})
        except BaselineError as e:
            print(e)
    """)
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert "cannot save the baseline" in done.stdout, done.stderr
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["baseline.npz"]
