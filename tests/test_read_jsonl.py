"""Reading a JSONL log back (the browser view's history, tools.fleet, the tests): whatever a line holds, a line that is
not a record is skipped with a warning, never an exception."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from edge.sinks import read_jsonl


def test_lines_that_are_not_records_are_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    log = tmp_path / "predictions.jsonl"
    lines = ['{"frame": 1}', "[" * 100_000 + "]" * 100_000, "[1, 2]", "7", '{"frame": 2', '{"frame": 3}']
    log.write_bytes("\n".join(lines).encode() + b"\n\xff\xfe{}\n")
    with caplog.at_level(logging.WARNING, logger="edge.sinks.disklog"):
        assert read_jsonl(log) == [{"frame": 1}, {"frame": 3}]
    assert len(caplog.records) == 5
