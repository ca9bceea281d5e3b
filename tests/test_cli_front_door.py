"""What a newcomer meets first: a run that shows nothing says so, --check-config fails where run fails, a looping
folder is paced, long class lists are summed up, the capture time leaves out the pacing sleep."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest
from conftest import REPO, run_python

from edge.explain.class_names import summary as class_summary
from edge.explain.explainer import Explainer
from edge.service.loop import Explaining, Loop, LoopConfig
from edge.sources import ImageFolderSource, SourceConfig
from edge.sources.base import SLIDESHOW_FPS, Pacer

DEMO_MODEL = REPO / "models" / "fruit"
SAMPLES = REPO / "samples"
SILENT = "nothing will show or keep the explanations"


@pytest.mark.slow
def test_a_run_with_no_output_warns_once_and_says_what_to_add(tmp_path: Path) -> None:
    proc = run_python("-m", "edge", "run", "--source", f"images:{SAMPLES}", "--no-display", "--max-frames", "2",
                      timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count(SILENT) == 1 and "--log-dir DIR" in proc.stderr and "--stdout" in proc.stderr
    for shown in (["--stdout"], ["--log-dir", str(tmp_path / "log")]):
        proc = run_python("-m", "edge", "run", "--source", f"images:{SAMPLES}", "--no-display", "--max-frames", "2",
                          *shown, timeout=120)
        assert proc.returncode == 0 and SILENT not in proc.stderr, proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("args", [["--source", "picamera2"], ["--model", "no/such/bundle", "--source", "synthetic"]])
def test_check_config_fails_where_run_fails_at_start_with_the_same_line(args: list[str]) -> None:
    """This machine has no picamera2 library: run stops at start, so --check-config must not say OK."""
    ran = run_python("-m", "edge", "run", "--no-display", "--max-frames", "1", *args, timeout=120)
    checked = run_python("-m", "edge", "run", "--check-config", "--no-display", *args, timeout=120)
    assert ran.returncode == checked.returncode == 2, (ran.stderr, checked.stderr)
    last = checked.stderr.strip().splitlines()[-1]
    assert last.startswith("edge: error: ") and last == ran.stderr.strip().splitlines()[-1]
    assert "config OK" not in checked.stderr


def test_a_repeated_folder_without_fps_is_paced_as_a_slideshow(tmp_path: Path) -> None:
    frames = 4
    for config, slowest in ((SourceConfig(repeat=True), None), (SourceConfig(repeat=True, fps=0), 0.5),
                            (SourceConfig(), 0.5)):
        with ImageFolderSource(SAMPLES, config) as source:
            t0 = time.monotonic()
            for _ in range(frames):
                assert source.read() is not None
            took = time.monotonic() - t0
        if slowest is None:  # the first frame is due at once, then one period each
            assert took >= (frames - 1) / SLIDESHOW_FPS * 0.95, took
        else:
            assert took < slowest, (config, took)


def test_the_capture_time_leaves_out_the_pacing_sleep() -> None:
    fps = 10.0
    source = ImageFolderSource(SAMPLES, SourceConfig(fps=fps))
    with source:
        stats = Loop(Explainer.load(DEMO_MODEL), source, [], config=LoopConfig(max_frames=4),
                     explaining=Explaining(), stop=threading.Event()).run()
    assert stats.frames == 4
    assert stats.means()["capture"] < 0.5 * 1e3 / fps, stats.means()  # decoding a small JPEG, not the 100 ms period
    pacer = Pacer(fps)
    assert pacer.wait() == 0.0 and 50 < pacer.wait() <= 1e3 / fps + 1


def test_long_class_lists_are_summed_up(caplog: pytest.LogCaptureFixture) -> None:
    names = [f"class_{i}" for i in range(1000)]
    assert class_summary(names) == "1000 classes: class_0, class_1, class_2, class_3, class_4, ..."
    with caplog.at_level(logging.INFO, logger="edge.explain.explainer"):
        explainer = Explainer.load(DEMO_MODEL)
    assert "(3 classes: Apfel, Orange, Tomate; " in caplog.text
    with pytest.raises(Exception, match=r"this model knows 3 classes: Apfel, Orange, Tomate$"):
        explainer.class_index("Banane")
