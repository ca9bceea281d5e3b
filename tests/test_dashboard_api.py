"""The dashboard's API in process: controls change the live settings only by a same-origin JSON POST with the token,
read-only mode refuses them, bad values are one-line 400s; frames, records and snapshots by sequence number; events
and heatmaps."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator

import numpy as np
import pytest
from http_client import ask

from edge.explain.explainer import Explanation
from edge.http.sink import DashboardConfig, DashboardSink
from edge.live import LiveSettings, Settings
from edge.records import Frame, Result

TOKEN = "t0ken+/=-0123456789abc"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CLASSES = ("Apfel", "Orange", "Tomate")
JSON = {"Content-Type": "application/json"}


def _result(index: int, class_index: int) -> Result:
    image = np.full((48, 64, 3), 40 * class_index, np.uint8)  # (h, w, 3) uint8 RGB
    probabilities = np.full(3, 0.1, np.float32)
    probabilities[class_index] = 0.8
    cam = np.zeros((6, 8), np.float32)  # (h, w) float32
    cam[class_index, class_index] = 1.0
    explanation = Explanation(class_index=class_index, label=CLASSES[class_index], probabilities=probabilities,
                              score=1.0, cam=cam, cam_raw=cam, method="gradcam", timings={"explain": 1.0})
    return Result(frame=Frame(image=image, index=index, timestamp=1000.0 + index), explanation=explanation, cam=cam,
                  top=[(CLASSES[class_index], 0.8)], source="test", fps=10.0, class_names=CLASSES,
                  timings={"capture": 1.0, "explain": 2.0},
                  draw=lambda: np.full_like(image, 255))


def _live() -> LiveSettings:
    return LiveSettings(Settings(method="gradcam", target=None, alpha=0.45, threshold=0.2), ("gradcam", "eigencam"),
                        CLASSES)


@pytest.fixture
def view(request: pytest.FixtureRequest) -> Iterator[DashboardSink]:
    controls = getattr(request, "param", True)
    sink = DashboardSink(DashboardConfig(enabled=True, port=0, token=TOKEN, controls=controls), live=_live(),
                     about={"model": "fruit", "classes": list(CLASSES)})
    sink.open()
    for i in range(12):
        sink.handle(_result(i, i % 3 if i < 6 else 2))
    try:
        yield sink
    finally:
        sink.close()


def _post(view: DashboardSink, body: object, headers: dict[str, str] | None = None) -> int:
    return ask(view.port, "/api/controls", "POST", headers=AUTH | JSON | (headers or {}),
               body=json.dumps(body).encode()).status


def test_controls_change_the_live_settings(view: DashboardSink) -> None:
    origin = {"Origin": f"http://127.0.0.1:{view.port}", "Sec-Fetch-Site": "same-origin"}
    answer = ask(view.port, "/api/controls", "POST", headers=AUTH | JSON | origin,
                 body=b'{"method": "eigencam", "target": "Orange", "alpha": 0.7, "paused": true}',
                 host=f"127.0.0.1:{view.port}")
    assert answer.status == 200, answer.body
    assert json.loads(answer.body)["settings"]["method"] == "eigencam"
    assert view.board.live is not None
    assert view.board.live.get() == Settings("eigencam", "Orange", 0.7, 0.2, True, True)
    assert _post(view, {"target": None, "overlay": False, "paused": False}) == 200
    assert view.board.live.get() == Settings("eigencam", None, 0.7, 0.2, False, False)


def test_controls_refused_without_token_cross_origin_or_bad(view: DashboardSink) -> None:
    assert view.board.live is not None
    before = view.board.live.get()
    body = json.dumps({"method": "eigencam"}).encode()
    assert ask(view.port, "/api/controls", "POST", headers=JSON, body=body).status == 401
    assert _post(view, {"method": "eigencam"}, {"Origin": "http://evil.example"}) == 403
    assert _post(view, {"method": "eigencam"}, {"Origin": f"http://127.0.0.1:{view.port + 1}"}) == 403
    assert _post(view, {"method": "eigencam"}, {"Sec-Fetch-Site": "same-site"}) == 403
    assert _post(view, {"method": "eigencam"}, {"Content-Type": "text/plain"}) == 415  # what a form can send
    assert ask(view.port, "/api/controls", "GET", headers=AUTH).status == 405
    for bad in ({"method": "nope"}, {"alpha": 2}, {"target": "Banane"}, {"paused": "yes"}, {"colour": 1}, [1]):
        assert _post(view, bad) == 400, bad
    assert view.board.live.get() == before


@pytest.mark.parametrize("view", [False], indirect=True)
def test_read_only_mode(view: DashboardSink) -> None:
    assert _post(view, {"method": "eigencam"}) == 403
    state = json.loads(ask(view.port, "/api/state", headers=AUTH).body)
    assert state["controls"] is False


def test_frames_records_and_snapshots_by_sequence(view: DashboardSink) -> None:
    newest = json.loads(ask(view.port, "/prediction.json", headers=AUTH).body)
    seq = newest["seq"]
    assert seq == 12
    older = ask(view.port, f"/frame.jpg?seq={seq - 3}", headers=AUTH)
    assert older.status == 200 and older.headers["x-frame-seq"] == str(seq - 3)
    assert json.loads(ask(view.port, f"/prediction.json?seq={seq - 3}", headers=AUTH).body)["frame"] == seq - 4
    assert ask(view.port, "/frame.jpg?seq=1", headers=AUTH).status == 404  # out of the ring by now
    snap = ask(view.port, f"/snapshot.zip?seq={seq}", headers=AUTH)
    assert snap.status == 200 and "attachment" in snap.headers["content-disposition"]
    with zipfile.ZipFile(io.BytesIO(snap.body)) as archive:
        assert sorted(archive.namelist()) == ["frame.jpg", "overlay.jpg", "record.json"]
        assert json.loads(archive.read("record.json"))["seq"] == seq
        assert archive.read("frame.jpg")[:2] == archive.read("overlay.jpg")[:2] == b"\xff\xd8"


def test_events_and_heatmaps(view: DashboardSink) -> None:
    events = json.loads(ask(view.port, "/api/events", headers=AUTH).body)
    # The log policy: the first frame, then every class change (0,1,2,0,1,2, then 2 stays): 6 events, newest first.
    assert [e["frame"] for e in events] == [5, 4, 3, 2, 1, 0]
    image = ask(view.port, f"/event.jpg?id={events[0]['id']}&kind=frame", headers=AUTH)
    assert image.status == 200 and image.body[:2] == b"\xff\xd8"
    assert ask(view.port, "/event.jpg?id=999", headers=AUTH).status == 404
    maps = json.loads(ask(view.port, "/api/heatmaps", headers=AUTH).body)
    assert [m["frames"] for m in maps] == [2, 2, 8]
    png = ask(view.port, "/heatmap.png?class=2", headers=AUTH)
    assert png.status == 200 and png.body[:4] == b"\x89PNG"
    health = json.loads(ask(view.port, "/api/health", headers=AUTH).body)
    assert health["fps"] == 10.0 and health["model"] == "fruit" and "uptime_s" in health
    assert set(health["latency_ms"]) == {"capture", "explain", "render"}  # drawing is timed before the record is made
