"""The dashboard in Debian's Chromium (Selenium + Debian's chromedriver), asserting on the live DOM: the text and bars
are the record of the frame shown; switching the method changes the records that follow; the snapshot is a decodable
JPEG pair and valid JSON; another site's page cannot change anything; read-only mode hides the controls; the page
says it is disconnected and recovers when the service comes back."""

from __future__ import annotations

import http.server
import json
import threading
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from browser import chromium_driver, wait_until
from conftest import REPO
from edge_process import EdgeProcess

from edge.http.sink import DashboardConfig, DashboardSink

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def edge(fruit_bundle: Path) -> Iterator[EdgeProcess]:
    args = ["--model", str(fruit_bundle), "--source", f"images:{REPO / 'samples'}", "--repeat", "--fps", "4"]
    with EdgeProcess(args) as process:
        yield process


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.loads(answer.read())


SHOWN = """const img = document.getElementById('view');
return {seq: Number(img.dataset.seq), label: document.getElementById('label').textContent,
        method: document.getElementById('method-shown').textContent,
        frame: document.getElementById('frame').textContent,
        bars: [...document.querySelectorAll('#bars li')].map(li => [li.dataset.class, Number(li.dataset.p)])};"""


def test_shown_text_and_bars_are_the_shown_frames_record(edge: EdgeProcess, driver: Any) -> None:
    driver.get(edge.url)
    checked = 0
    for _ in range(5):
        first = wait_until(lambda: driver.execute_script(SHOWN)["seq"] or None)
        shown = wait_until(lambda first=first: (s := driver.execute_script(SHOWN))["seq"] > first and s)  # a fresh one
        record = _get(f"{edge.url}prediction.json?seq={shown['seq']}")
        assert shown["label"] == record["label"] and shown["frame"] == str(record["frame"])
        assert shown["method"] == record["method"]
        assert dict(shown["bars"]) == record["probabilities"]
        assert shown["bars"][0][0] == record["label"]  # sorted, the shown class first
        checked += 1
    assert checked == 5
    assert driver.find_element("id", "status").text == "live"


def test_switching_the_method_changes_the_records_that_follow(edge: EdgeProcess, driver: Any) -> None:
    from selenium.webdriver.support.ui import Select

    driver.get(edge.url)
    method = wait_until(
        lambda: driver.find_element("id", "method").is_displayed() and driver.find_element("id", "method"))
    Select(method).select_by_value("eigencam")
    wait_until(lambda: driver.execute_script(SHOWN)["method"] == "eigencam")
    seq = _get(edge.url + "prediction.json")["seq"]
    time.sleep(1.0)
    later = _get(edge.url + "prediction.json")
    assert later["seq"] > seq and later["method"] == "eigencam"
    assert _get(edge.url + "api/state")["settings"]["method"] == "eigencam"
    # keyboard: Tab to the pause button, Space presses it
    from selenium.webdriver.common.keys import Keys

    pause = driver.find_element("id", "pause")
    driver.execute_script("document.getElementById('overlay').focus()")
    driver.switch_to.active_element.send_keys(Keys.TAB)
    assert driver.switch_to.active_element == pause
    pause.send_keys(Keys.SPACE)
    wait_until(lambda: _get(edge.url + "api/state")["settings"]["paused"])
    frozen = _get(edge.url + "prediction.json")["seq"]
    time.sleep(1.0)
    assert _get(edge.url + "prediction.json")["seq"] == frozen  # paused: the view keeps its frame
    pause.send_keys(Keys.SPACE)
    Select(driver.find_element("id", "method")).select_by_value("gradcam")
    wait_until(lambda: not _get(edge.url + "api/state")["settings"]["paused"])


def test_snapshot_downloads_the_frame_overlay_and_record(edge: EdgeProcess, driver: Any, tmp_path: Path) -> None:
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.get(edge.url)
    wait_until(lambda: driver.execute_script(SHOWN)["seq"])
    driver.find_element("id", "snapshot").click()
    (archive_path,) = wait_until(lambda: list(downloads.glob("*.zip")))
    with zipfile.ZipFile(archive_path) as archive:
        record = json.loads(archive.read("record.json"))
        for name in ("frame.jpg", "overlay.jpg"):
            image = cv2.imdecode(np.frombuffer(archive.read(name), np.uint8), cv2.IMREAD_COLOR)
            assert image is not None and image.shape[:2] == (record["size"][1], record["size"][0]), name
    assert archive_path.name == f"edge-frame-{record['frame']}.zip" and record["label"]


def test_another_sites_page_cannot_change_settings(edge: EdgeProcess, driver: Any, tmp_path: Path) -> None:
    """A page on another port of the same host (same site: SameSite cookies would go along) POSTs to the controls
    as a form and as no-cors fetches: all refused, nothing changes."""
    target = edge.url + "api/controls"
    (tmp_path / "evil.html").write_text(f"""<!doctype html><body>
<form id=f method=post action="{target}" enctype="text/plain"><input name='{{"method":"eigencam","x":"' value='"}}'>
</form><script>
fetch("{target}", {{method: "POST", mode: "no-cors", credentials: "include", body: '{{"method":"eigencam"}}'}});
fetch("{target}", {{method: "POST", mode: "no-cors", credentials: "include", headers: {{"Content-Type":
  "text/plain"}}, body: '{{"paused":true}}'}}).finally(() => document.getElementById("f").submit());
</script></body>""")
    handler = type("Quiet", (http.server.SimpleHTTPRequestHandler,), {"log_message": lambda *a: None})
    evil = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: handler(*a, directory=str(tmp_path)))
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    try:
        driver.get(edge.url)  # the owner's own tab first
        wait_until(lambda: driver.execute_script(SHOWN)["seq"])
        before = _get(edge.url + "api/state")["settings"]
        driver.get(f"http://127.0.0.1:{evil.server_address[1]}/evil.html")
        wait_until(lambda: driver.current_url.startswith(edge.url) or None, 20)  # the form went through: refused
        assert "403" in driver.page_source
        assert _get(edge.url + "api/state")["settings"] == before
    finally:
        evil.shutdown()
        evil.server_close()


def _feed(sink: DashboardSink, stop: threading.Event) -> None:
    index = 0
    while not stop.wait(0.1):
        _, data = cv2.imencode(".jpg", np.full((60, 80, 3), 90, np.uint8))
        sink.hub.publish(data.tobytes(), {"label": "Apfel", "confidence": 0.9, "frame": index, "method": "gradcam",
                                          "probabilities": {"Apfel": 0.9, "Orange": 0.1}})
        index += 1


def test_page_says_disconnected_and_recovers_after_a_restart(driver: Any) -> None:
    sink = DashboardSink(DashboardConfig(enabled=True, port=0, controls=False))
    sink.open()
    port, stop = sink.port, threading.Event()
    feeder = threading.Thread(target=_feed, args=(sink, stop), daemon=True)
    feeder.start()
    try:
        driver.get(sink.url)
        wait_until(lambda: driver.find_element("id", "status").text == "live")
        assert driver.find_element("id", "readonly").is_displayed()  # read-only: no controls
        assert not driver.find_element("id", "control-form").is_displayed()
        stop.set()
        feeder.join()
        sink.close()
        wait_until(lambda: "reconnecting" in driver.find_element("id", "status").text)
        time.sleep(2.0)
        sink = DashboardSink(DashboardConfig(enabled=True, port=port, controls=False))
        sink.open()
        stop = threading.Event()
        threading.Thread(target=_feed, args=(sink, stop), daemon=True).start()
        wait_until(lambda: driver.find_element("id", "status").text == "live")
        seq = wait_until(lambda: driver.execute_script(SHOWN)["seq"])
        wait_until(lambda: driver.execute_script(SHOWN)["seq"] > seq)  # frames flow again
        stop.set()
        sink.close()
        sink = DashboardSink(DashboardConfig(enabled=True, port=port, token="a-new-token-012345"))  # back with a token
        sink.open()
        wait_until(lambda: "token required" in driver.find_element("id", "status").text)
    finally:
        stop.set()
        sink.close()


def test_two_open_dashboards_keep_the_loops_pace(fruit_bundle: Path, tmp_path: Path) -> None:
    """The loop's frame rate with two dashboards open stays near its rate with none (generous: a shared machine)."""
    args = ["--model", str(fruit_bundle), "--source", "synthetic", "--fps", "20"]
    with EdgeProcess(args) as edge:
        alone = edge.frame_rate(3.0)
        viewers = [chromium_driver(tmp_path / f"profile{i}", 1280, 900) for i in range(2)]
        try:
            for viewer in viewers:
                viewer.get(edge.url)  # type: ignore[attr-defined]
            for viewer in viewers:
                seq = wait_until(lambda v=viewer: v.execute_script(SHOWN)["seq"])
                wait_until(lambda v=viewer, s=seq: v.execute_script(SHOWN)["seq"] > s + 10)  # following the frames
            watched = edge.frame_rate(3.0)
            health = _get(edge.url + "api/health")
        finally:
            for viewer in viewers:
                viewer.quit()  # type: ignore[attr-defined]
    assert health["viewers"] == 2
    print(f"loop fps alone {alone:.1f}, with two dashboards {watched:.1f}")
    assert watched > 0.6 * alone, (alone, watched)
