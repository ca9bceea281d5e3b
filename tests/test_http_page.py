"""The browser view's page in Debian's Chromium, against the real server (in process, frames published by the
test): a token with URL-special characters works, leaves the address bar, and lives only in an HttpOnly cookie."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import cv2
import numpy as np
import pytest
from browser import chromium_driver, wait_until

from edge.http.sink import DashboardConfig, DashboardSink
from edge.live import LiveSettings, Settings

pytestmark = pytest.mark.slow

TOKEN = "Zm9v+YmFy/&x#y%z="


def _jpeg(index: int) -> bytes:
    image = np.full((120, 160, 3), 60 + 10 * (index % 10), np.uint8)  # (h, w, 3) uint8 BGR
    ok, data = cv2.imencode(".jpg", image)
    assert ok
    return data.tobytes()


@pytest.fixture
def view() -> Iterator[DashboardSink]:
    """The view with a token, fed 10 frames a second until the test ends."""
    live = LiveSettings(Settings(method="gradcam", target=None, alpha=0.5, threshold=0.2), ("gradcam", "eigencam"),
                        ("Apfel", "Orange"))
    sink = DashboardSink(DashboardConfig(enabled=True, port=0, token=TOKEN), live=live)
    sink.open()
    stop = threading.Event()

    def feed() -> None:
        index = 0
        while not stop.wait(0.1):
            sink.hub.publish(_jpeg(index), {"label": "Apfel", "confidence": 0.9, "frame": index, "fps": 10.0})
            index += 1

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        yield sink
    finally:
        stop.set()
        feeder.join()
        sink.close()


def test_token_with_url_characters_then_only_a_cookie(view: DashboardSink, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    driver: Any = chromium_driver(tmp_path / "profile")
    try:
        driver.get(view.url + "?token=" + quote(TOKEN, safe=""))
        wait_until(lambda: "Apfel" in driver.find_element(By.ID, "label").text)
        assert "token" not in driver.current_url
        assert TOKEN not in driver.page_source and quote(TOKEN, safe="") not in driver.page_source
        wait_until(lambda: driver.execute_script("return document.getElementById('view').naturalWidth") == 160)
        (cookie,) = driver.get_cookies()
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and TOKEN not in cookie["value"]
        assert driver.execute_script("return document.cookie") == ""  # scripts cannot read it
        driver.find_element(By.ID, "overlay").click()  # a control's POST carries the cookie too
        wait_until(lambda: view.board.live is not None and not view.board.live.get().overlay)
    finally:
        driver.quit()


def test_markup_in_class_names_is_shown_as_text(tmp_path: Path) -> None:
    """Class names come from the bundle's manifest: whatever they hold is text on the page, never markup."""
    from selenium.webdriver.common.by import By

    evil = '<img id="injected" src=x onerror="document.title=1">&amp;'
    sink = DashboardSink(DashboardConfig(enabled=True, port=0))
    sink.open()
    driver: Any = chromium_driver(tmp_path / "profile")
    try:
        for index in range(3):
            sink.hub.publish(_jpeg(index), {"label": evil, "confidence": 0.9, "frame": index, "method": evil,
                                            "probabilities": {evil: 0.9, "b": 0.1}})
        driver.get(sink.url)
        wait_until(lambda: driver.find_element(By.ID, "label").text == evil)
        assert driver.find_element(By.ID, "method-shown").text == evil
        assert driver.find_element(By.CSS_SELECTOR, "#bars li span").text == evil
        assert not driver.find_elements(By.ID, "injected") and driver.title == "edge-explainer"
    finally:
        driver.quit()
        sink.close()
