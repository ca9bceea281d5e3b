"""The dashboard at an unpaced rate (images:samples --repeat without --fps, hundreds of frames a second) in Debian's
Chromium: every frame, record and event image the page asks for is still there (no 404), and the pictures load."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser import chromium_driver
from conftest import REPO
from edge_process import EdgeProcess

pytestmark = pytest.mark.slow

# Installed before the page's own script: every response the page gets, by URL and status.
WATCH = """window.__responses = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) window.__responses.push([e.name, e.responseStatus]);
}).observe({type: "resource", buffered: true});"""

STATE = """return {seq: Number(document.getElementById('view').dataset.seq || 0),
  responses: window.__responses.splice(0),
  events: [...document.querySelectorAll('#events img')].map(i => [i.src, i.complete, i.naturalWidth])};"""


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[Any]:
    browser: Any = chromium_driver(tmp_path / "profile", height=2400)  # tall: every lazy event thumbnail loads
    try:
        yield browser
    finally:
        browser.quit()


def test_unpaced_dashboard_never_asks_for_a_frame_or_event_that_is_gone(driver: Any) -> None:
    args = ["--model", str(REPO / "models" / "fruit"), "--source", f"images:{REPO / 'samples'}", "--repeat"]
    with EdgeProcess(args) as edge:
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": WATCH})
        driver.get(edge.url)
        seqs: set[int] = set()
        responses: list[tuple[str, int]] = []
        event_images: set[str] = set()
        deadline = time.monotonic() + 12
        while time.monotonic() < deadline:
            state = driver.execute_script(STATE)
            seqs.add(state["seq"])
            responses += [tuple(r) for r in state["responses"]]
            event_images |= {src for src, complete, width in state["events"] if complete and width > 0}
            time.sleep(0.2)
        made = sum(1 for t, _ in edge.frames if t >= deadline - 12)
    assert made > len(seqs), (made, len(seqs))  # unpaced: frames went by unshown (hundreds a second when idle)
    missing = [(url, status) for url, status in responses if status == 404]
    assert not missing, missing[:10]
    asked = [url for url, _ in responses]
    assert sum("frame.jpg" in u for u in asked) >= 10 and len(seqs) >= 10, (len(asked), len(seqs))
    assert sum("event.jpg" in u for u in asked) >= 10 and len(event_images) >= 10, (asked[-20:], len(event_images))
