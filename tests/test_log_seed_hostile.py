"""The dashboard's read-back of the disk log against a crafted log: a FIFO named like a logged JPEG, deeply nested
and overlong lines, hundreds of rotated files, huge field values. The start is never held up and nothing raises."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest
from http_client import ask
from test_dashboard_api import AUTH
from test_dashboard_seed import _events, _log

from edge.http import log_seed


def _read_back(log_dir: Path, count: int = 24) -> list[Any]:
    """last_logged_events on a thread; the test fails (instead of hanging) if it does not return in 10 s."""
    out: list[Any] = []
    worker = threading.Thread(target=lambda: out.append(log_seed.last_logged_events(log_dir, count)), daemon=True)
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "the read-back hung"
    return out[0]


def test_a_fifo_named_like_a_logged_jpeg_does_not_block(tmp_path: Path) -> None:
    records = _log(tmp_path, 3)
    newest = tmp_path / str(records[-1]["overlay_jpeg"])
    newest.unlink()
    os.mkfifo(newest)
    found = _read_back(tmp_path)
    assert [r["frame"] for r, _, _ in found] == [records[0]["frame"], records[1]["frame"]]


def test_nested_overlong_and_broken_lines_are_skipped(tmp_path: Path) -> None:
    records = _log(tmp_path, 2)
    jsonl = tmp_path / "predictions.jsonl"
    good = jsonl.read_text(encoding="utf-8")
    long_record = {**records[-1], "label": "x" * (log_seed.MAX_LINE + 10)}
    jsonl.write_text(good + "[" * 100_000 + "\n" + json.dumps(long_record) + "\n" + "\xff{\n" + "{\"a\":\n",
                     encoding="utf-8")
    found = _read_back(tmp_path)
    assert [r["frame"] for r, _, _ in found] == [r["frame"] for r in records]


def test_files_and_bytes_read_are_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _log(tmp_path, 1)
    filler = (json.dumps({"label": "y" * 1000}) + "\n").encode() * 4000  # 4 MB of records without JPEGs
    for day in range(1, 29):
        (tmp_path / f"predictions-202601{day:02d}T000000.000Z.jsonl").write_bytes(filler)
    read = [0]
    pread = os.pread

    def counting(fd: int, size: int, offset: int) -> bytes:
        read[0] += size
        return pread(fd, size, offset)

    monkeypatch.setattr(log_seed.os, "pread", counting)
    _read_back(tmp_path)
    assert read[0] <= log_seed.MAX_SCANNED


def test_event_listing_stays_small_whatever_the_log_holds(tmp_path: Path) -> None:
    records = _log(tmp_path, 3)
    jsonl = tmp_path / "predictions.jsonl"
    huge = [{**r, "label": "z" * 200_000, "method": {"nested": list(range(1000))}} for r in records]
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in huge), encoding="utf-8")
    events, view = _events(tmp_path, 24)
    try:
        assert len(events) == 3 and all(len(e["label"]) <= 200 and e["method"] is None for e in events)
        assert len(ask(view.port, "/api/events", headers=AUTH).body) < 2000
    finally:
        view.close()
