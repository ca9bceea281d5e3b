"""The dashboard's [faithfulness] text in Debian's Chromium (Selenium + Debian's chromedriver): the newest scores under
the live frame, and each class's running mean scores beside its mean heatmap, as the page's DOM shows them, against
the scores the real worker computed for the frames fed to the real dashboard."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import pytest
from browser import wait_until
from conftest import REPO

from edge import Explainer
from edge.http.sink import DashboardConfig, DashboardSink
from edge.records import Frame, Result
from edge.service.faithfulness_worker import FaithfulnessConfig, FaithfulnessWorker

pytestmark = pytest.mark.slow

FRUIT = REPO / "models" / "fruit"
SAMPLES = ("apfel_01.jpg", "orange_01.jpg", "apfel_02.jpg", "tomate_01.jpg")
SHOWN = "return [...document.querySelectorAll('#heatmaps figcaption')].map(c => c.textContent);"


def _text(scores: dict[str, Any]) -> str:
    """What the page writes for a set of scores (edge/web/app.js scoreText)."""
    return (f"deletion {scores['deletion_auc']:.3f}, insertion {scores['insertion_auc']:.3f}, "
            f"drop {scores['drop_in_confidence']:.3f}")


def _feed(sink: DashboardSink) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Each sample shown as a frame offered to the real worker, then a plain frame after it (which takes the scores
    in); returns every set of scores and the number of explained frames per class."""
    explainer = Explainer.load(FRUIT, num_threads=1)
    worker = FaithfulnessWorker(explainer, FaithfulnessConfig(enabled=True, every_n=2))
    worker.show_on([sink])
    sets: list[dict[str, Any]] = []
    frames: dict[str, int] = {}
    try:
        for i, name in enumerate(SAMPLES):
            bgr = cv2.imread(str(REPO / "samples" / name))
            image = np.ascontiguousarray(bgr[:, :, ::-1], np.uint8)  # (H, W, 3) uint8 RGB
            ex = explainer.explain(image)
            for index in (2 * i, 2 * i + 1):
                pending = worker.offer(index, image, ex)
                sink.handle(Result(frame=Frame(image=image, index=index, timestamp=1000.0 + index), explanation=ex,
                                   cam=ex.cam, top=[(ex.label, 0.9)], source="test", fps=4.0, drawn=image,
                                   class_names=tuple(explainer.class_names), scoring=pending))
                frames[ex.label] = frames.get(ex.label, 0) + 1
                if pending is not None:
                    assert pending.wait(60) and pending.value is not None and "skipped" not in pending.value
                    sets.append(pending.value)
    finally:
        worker.close()
    return sets, frames


def test_page_shows_the_latest_scores_and_each_classes_running_means(driver: Any) -> None:
    sink = DashboardSink(DashboardConfig(enabled=True, port=0), about={
        "model": "fruit", "classes": Explainer.load(FRUIT).class_names})
    sink.open()
    try:
        sets, frames = _feed(sink)
        driver.get(sink.url)
        latest = sets[-1]
        want = f"heatmap faithfulness (frame {latest['frame']}): {_text(latest)}"
        assert latest["frame"] == 2 * (len(SAMPLES) - 1)  # the last sample's scored frame
        shown = wait_until(lambda: driver.find_element("id", "faithfulness").is_displayed()
                           and driver.find_element("id", "faithfulness").text)
        assert shown == want
        expected = []
        for label, n in frames.items():
            mine = [s for s in sets if s["class"] == label]
            mean = {k: float(np.mean([s[k] for s in mine])) for k in ("deletion_auc", "insertion_auc",
                                                                        "drop_in_confidence")}
            expected.append(f"{label} ({n} frames) · mean {_text(mean)} ({len(mine)} scored)")
        assert len(expected) >= 2  # more than one class, each with its own means

        def captions_show_all() -> list[str] | None:
            captions: list[str] = driver.execute_script(SHOWN)
            return captions if all(any(e in c for c in captions) for e in expected) else None

        try:
            wait_until(captions_show_all, 15)
        except AssertionError:
            pytest.fail(f"captions {driver.execute_script(SHOWN)} do not show {expected}")
    finally:
        sink.close()
