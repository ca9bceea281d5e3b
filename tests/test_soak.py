"""A short soak in CI (the full 20,000 frames: `python -m tools.bench.soak`): no growth in memory, files, threads."""

from __future__ import annotations

import pytest

from tools.bench.soak import soak

pytestmark = pytest.mark.slow


def test_soak_has_no_growth() -> None:
    from conftest import REPO

    report = soak(2500, REPO / "models" / "fruit", [])
    assert report.exit_code == 0 and report.frames == 2500
    assert report.warm is not None and len(report.samples) > 10
    assert report.rss_growth_mb < 5.0, report
    low, high = report.fd_range_after_warmup
    assert high - low <= 2, report  # a JPEG being written at the moment of sampling, nothing more
    assert report.thread_range_after_warmup[0] == report.thread_range_after_warmup[1], report
