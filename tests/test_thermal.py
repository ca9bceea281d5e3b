"""Temperature and throttling from a fake sysfs tree and a fake vcgencmd; the hot back-off with hysteresis."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from edge.service.thermal import TEMP_PATH, Heat, HeatGovernor, ThermalReader, parse_throttled


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _sysfs(root: Path, millidegrees: str) -> Path:
    path = root / TEMP_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(millidegrees)
    return path


def _vcgencmd(tmp_path: Path, answer: str) -> str:
    """A stand-in for the Pi's vcgencmd (missing hardware): prints answer for `get_throttled`."""
    script = tmp_path / "vcgencmd"
    script.write_text(f'#!/bin/sh\n[ "$1" = get_throttled ] && echo "{answer}" && exit 0\nexit 1\n')
    script.chmod(0o755)
    return str(script)


def test_reads_temperature_and_throttling_from_the_fake_pi(tmp_path: Path) -> None:
    _sysfs(tmp_path, "71234\n")
    heat = ThermalReader(tmp_path, vcgencmd=_vcgencmd(tmp_path, "throttled=0x50004")).read()
    assert heat == Heat(71.2, 0x50004)
    assert heat.flags() == ["throttled"]
    assert heat.flags(since_boot=True) == ["under-voltage", "throttled"]
    assert heat.as_dict() == {"cpu_temp_c": 71.2, "throttled": "0x50004", "throttled_now": ["throttled"]}


def test_nothing_on_a_machine_without_them(tmp_path: Path) -> None:
    heat = ThermalReader(tmp_path, vcgencmd="").read()
    assert heat == Heat(None, None) and heat.flags() == []


def test_reads_at_most_once_per_period(tmp_path: Path) -> None:
    path = _sysfs(tmp_path, "50000")
    clock = Clock()
    reader = ThermalReader(tmp_path, vcgencmd="", every_s=5.0, clock=clock)
    assert reader.read().temp_c == 50.0
    path.write_text("60000")
    clock.now = 4.9
    assert reader.read().temp_c == 50.0
    clock.now = 5.0
    assert reader.read().temp_c == 60.0


@pytest.mark.parametrize(("text", "bits"), [("throttled=0x0\n", 0), ("throttled=0x80008", 0x80008),
                                            ("error=1", None), ("throttled=zz", None), ("", None)])
def test_parse_throttled(text: str, bits: int | None) -> None:
    assert parse_throttled(text) == bits


def test_a_failing_vcgencmd_is_not_asked_again(tmp_path: Path) -> None:
    reader = ThermalReader(tmp_path, vcgencmd=str(tmp_path / "missing"), every_s=0)
    assert reader.read().throttled is None
    assert reader.vcgencmd is None


def test_hot_backoff_with_hysteresis_logs_each_change_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = _sysfs(tmp_path, "60000")
    reader = ThermalReader(tmp_path, vcgencmd="", every_s=0)
    governor = HeatGovernor(80.0, hysteresis_c=5.0, hot_every_s=2.0)
    gaps = []
    with caplog.at_level(logging.INFO, logger="edge.service.thermal"):
        for millidegrees in (60000, 80000, 80500, 83000, 78000, 75500, 75000, 74900, 79000, 80100):
            path.write_text(str(millidegrees))
            gaps.append(governor.min_gap_s(reader.read().temp_c))
    # Above 80: slowed; it stays slowed down to 75 (hysteresis) and recovers only below it.
    assert gaps == [0.0, 0.0, 2.0, 2.0, 2.0, 2.0, 2.0, 0.0, 0.0, 2.0]
    assert governor.changes == 3
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3 and "above [loop] max_temp_c 80.0" in lines[0] and "full rate" in lines[1]


def test_governor_off_or_without_a_temperature_never_slows() -> None:
    assert HeatGovernor(0.0).min_gap_s(120.0) == 0.0
    assert HeatGovernor(70.0).min_gap_s(None) == 0.0
