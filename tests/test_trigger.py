"""[trigger]: the motion trigger on a synthetic sequence with known changes, interval and keep-alive on a fake clock."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import REPO, run_python
from numpy.typing import NDArray

from edge.service.config import ConfigError, build_section
from edge.service.trigger import Trigger, TriggerConfig

H, W = 240, 320


def _scene(index: int, rng: np.random.Generator) -> NDArray[np.uint8]:
    """(H, W, 3) uint8: a textured still scene with sensor noise; a box appears at 30, moves at 60, leaves at 80."""
    base = np.tile(np.linspace(30, 220, W, dtype=np.float32), (H, 1))[:, :, None].repeat(3, axis=2)
    if 30 <= index < 60:
        base[100:140, 50:90] = (250, 250, 210)
    elif 60 <= index < 80:
        base[100:140, 200:240] = (250, 250, 210)
    noisy = base + rng.normal(0, 4, base.shape)  # a camera's noise: must not count as motion
    return np.clip(noisy, 0, 255).astype(np.uint8)


def _run(trigger: Trigger, frames: int, fps: float = 10.0) -> dict[int, str]:
    rng = np.random.default_rng(0)
    fired = {}
    for i in range(frames):
        reason = trigger.decide(_scene(i, rng), i / fps)
        if reason:
            fired[i] = reason
    return fired


def test_motion_explains_exactly_the_frames_where_the_scene_changes() -> None:
    trigger = Trigger(TriggerConfig(mode="motion", keepalive_s=0))
    assert _run(trigger, 100) == {0: "first", 30: "motion", 60: "motion", 80: "motion"}
    assert trigger.skipped == 96


def test_motion_ignores_a_change_smaller_than_min_area() -> None:
    # The 40x40 box is 2 % of the frame: with min_area 5 % it is not a change.
    assert _run(Trigger(TriggerConfig(mode="motion", keepalive_s=0, min_area=0.05)), 100) == {0: "first"}


def test_motion_adds_up_a_slow_change_and_explains_it_once() -> None:
    trigger = Trigger(TriggerConfig(mode="motion", keepalive_s=0, threshold=25))
    frame = np.full((H, W, 3), 100, np.uint8)
    fired = [i for i in range(40) if trigger.decide(np.clip(frame.astype(int) + 2 * i, 0, 255).astype(np.uint8),
                                                    i * 0.1)]
    # 2 grey levels a frame: no frame differs from its predecessor, but frame 13 is 26 levels from frame 0.
    assert fired == [0, 13, 26, 39]


def test_keepalive_explains_a_still_scene_every_keepalive_s() -> None:
    fired = _run(Trigger(TriggerConfig(mode="motion", keepalive_s=2.0)), 30)  # 10 fps: frames 0..29, 0..2.9 s
    assert fired == {0: "first", 20: "keepalive"}


def test_interval_explains_every_interval_s() -> None:
    fired = _run(Trigger(TriggerConfig(mode="interval", interval_s=1.5)), 40)
    assert list(fired) == [0, 15, 30]
    assert set(fired.values()) == {"first", "interval"}


def test_always_explains_every_frame() -> None:
    trigger = Trigger(TriggerConfig())
    assert len(_run(trigger, 20)) == 20 and trigger.skipped == 0


def test_a_change_during_the_min_gap_is_explained_when_the_gap_ends() -> None:
    trigger = Trigger(TriggerConfig(mode="motion", keepalive_s=0))
    rng = np.random.default_rng(0)
    fired = [i for i in range(100) if trigger.decide(_scene(i, rng), i / 10, min_gap_s=3.5)]
    # The box appears at frame 30 (3.0 s), only 3.0 s after frame 0: explained at 35, the first frame 3.5 s on.
    assert fired == [0, 35, 70]


def test_always_mode_obeys_the_min_gap() -> None:
    trigger = Trigger(TriggerConfig())
    assert list(_run_gap(trigger, 20, 0.5)) == [0, 5, 10, 15]


def _run_gap(trigger: Trigger, frames: int, gap: float) -> list[int]:
    image = np.zeros((H, W, 3), np.uint8)
    return [i for i in range(frames) if trigger.decide(image, i / 10, min_gap_s=gap - 1e-9)]


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("mode", "sometimes", "not one of always, motion, interval"), ("threshold", 0, "threshold"),
    ("min_area", 2.0, "min_area")])
def test_bad_trigger_config_is_one_clear_error(key: str, value: object, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        build_section(TriggerConfig, {key: value}, "[trigger]")


def test_the_trigger_bench_runs_and_prints_both_modes_with_the_cpu() -> None:
    """tools.bench.trigger on the demo bundle for a few seconds (figures are not checked: it is not a timed test)."""
    proc = run_python("-m", "tools.bench.trigger", "--model", str(REPO / "models" / "fruit"), "--seconds", "2",
                      "--period", "1", "--live-view", timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("CPU: ") and "every frame drawn and encoded" in lines[0]
    assert [line.split(":")[0].strip() for line in lines[1:3]] == ["always", "motion"]
    assert "2 changes" in lines[2] and "motion saves" in lines[3]
