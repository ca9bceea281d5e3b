"""The dashboard's recent events survive a restart: they are read back from the disk log (--log-dir) at start, newest
records first, only those whose JPEGs are still there and carry the log's own names."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from http_client import ask
from test_dashboard_api import AUTH, CLASSES, TOKEN, _live, _result

from edge.http import log_seed
from edge.http.sink import DashboardConfig, DashboardSink
from edge.sinks.disklog import DiskLogConfig, DiskLogSink, read_jsonl


def _log(directory: Path, frames: int) -> list[dict[str, object]]:
    """A disk log written by the real sink: every frame kept (a class change each time), JPEGs saved."""
    sink = DiskLogSink(DiskLogConfig(dir=str(directory), fsync=False, min_free_mb=0.0), every_frame_default=True)
    sink.open()
    for i in range(frames):
        sink.handle(_result(i, i % 3))
    sink.close()
    return read_jsonl(directory / "predictions.jsonl")


def _events(log_dir: Path | str, size: int) -> tuple[list[dict[str, object]], DashboardSink]:
    view = DashboardSink(DashboardConfig(enabled=True, port=0, token=TOKEN, events=size), live=_live(),
                     about={"model": "fruit", "classes": list(CLASSES)}, log_dir=str(log_dir))
    view.open()
    return json.loads(ask(view.port, "/api/events", headers=AUTH).body), view


def test_a_restarted_view_shows_the_last_logged_frames(tmp_path: Path) -> None:
    records = _log(tmp_path, 9)
    events, view = _events(tmp_path, 4)
    try:
        assert [e["frame"] for e in events] == [8, 7, 6, 5]  # newest first, as the ring lists its own
        assert [e["label"] for e in events] == [records[i]["label"] for i in (8, 7, 6, 5)]
        for event, record in zip(events, records[8:4:-1], strict=True):
            for kind in ("overlay", "frame"):
                body = ask(view.port, f"/event.jpg?id={event['id']}&kind={kind}", headers=AUTH).body
                assert body == (tmp_path / str(record[f"{kind}_jpeg"])).read_bytes()
        view.handle(_result(9, 2))  # this run's events come after the old ones, with new ids
        after = json.loads(ask(view.port, "/api/events", headers=AUTH).body)
        assert after[0]["frame"] == 9 and after[0]["id"] not in {e["id"] for e in events}
    finally:
        view.close()


def test_without_a_log_the_view_starts_empty(tmp_path: Path) -> None:
    events, view = _events("", 4)
    view.close()
    assert events == []
    events, view = _events(tmp_path / "never-written", 4)
    view.close()
    assert events == []


def test_records_without_their_own_jpegs_are_skipped(tmp_path: Path) -> None:
    records = _log(tmp_path, 5)
    os.unlink(tmp_path / str(records[4]["overlay_jpeg"]))  # deleted by the quota
    outside = tmp_path / "secret.jpg"
    outside.write_bytes(b"\xff\xd8not the log's")
    (tmp_path / "images" / "20260101T000000.000Z-00000099-overlay.jpg").symlink_to(outside)
    with open(tmp_path / "predictions.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps({**records[3], "frame": 98, "overlay_jpeg": "../secret.jpg"}) + "\n")
        f.write(json.dumps({**records[3], "frame": 97,  # an image of the log's, but named by another folder
                            "overlay_jpeg": "elsewhere/" + str(records[2]["overlay_jpeg"]).split("/")[1]}) + "\n")
        f.write(json.dumps({**records[3], "frame": 99,
                            "overlay_jpeg": "images/20260101T000000.000Z-00000099-overlay.jpg"}) + "\n")
        f.write('{"frame": 100, "overlay_jpeg": "images/2026')  # a line cut by a power failure
    events, view = _events(tmp_path, 3)
    view.close()
    assert [e["frame"] for e in events] == [3, 2, 1]


def test_rotated_logs_are_read_newest_first_in_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(log_seed, "CHUNK", 97)  # many chunk boundaries inside lines
    records = _log(tmp_path, 7)
    current = tmp_path / "predictions.jsonl"
    lines = current.read_text(encoding="utf-8").splitlines(keepends=True)
    (tmp_path / "predictions-20260101T000000.000Z.jsonl").write_text("".join(lines[:2]), encoding="utf-8")
    (tmp_path / "predictions-20260102T000000.000Z.jsonl").write_text("".join(lines[2:5]), encoding="utf-8")
    current.write_text("".join(lines[5:]), encoding="utf-8")
    found = log_seed.last_logged_events(tmp_path, 6)
    assert [r["frame"] for r, _, _ in found] == [1, 2, 3, 4, 5, 6]
    assert [r["label"] for r, _, _ in found] == [records[i]["label"] for i in range(1, 7)]
    assert all(frame[:2] == overlay[:2] == b"\xff\xd8" for _, frame, overlay in found)
