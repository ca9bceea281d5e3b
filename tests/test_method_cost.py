"""The service's warning when a trunk-pass CAM method cannot keep the configured frame rate: at start, and when the
browser view's controls choose such a method while it runs."""

from __future__ import annotations

import json
import logging
import time

import pytest
from conftest import REPO
from edge_process import EdgeProcess
from http_client import ask

from edge import Explainer
from edge.service.method_cost import trunk_pass_ms, warn_if_too_slow


def test_trunk_pass_methods_warn_at_a_rate_they_cannot_keep(caplog: pytest.LogCaptureFixture) -> None:
    ex = Explainer.load(REPO / "models" / "fruit", num_threads=1)
    k = ex.head.input_shape[-1]
    count, ms = trunk_pass_ms(ex, "sscam")  # type: ignore[misc]
    assert count == 1 + 35 * k and ms > 0
    assert trunk_pass_ms(ex, "gradcam") is None and trunk_pass_ms(ex, "ablationcam") is None  # no extra trunk pass
    with caplog.at_level(logging.WARNING, logger="edge.service.method_cost"):
        assert warn_if_too_slow(ex, "sscam", 30.0)
        assert not warn_if_too_slow(ex, "sscam", None)  # unpaced: no rate to keep
        assert not warn_if_too_slow(ex, "gradcam", 30.0)
        assert not warn_if_too_slow(ex, "smoothgradcampp", 0.001)  # 4 passes keep one frame in 1000 s
    warnings = [r for r in caplog.records if r.name == "edge.service.method_cost"]  # not the explainer's load line
    assert len(warnings) == 1
    assert warnings[0].getMessage().startswith(f"method sscam runs the feature model {1 + 35 * k} times a frame")


def test_aug_smooth_adds_its_passes_to_any_method(caplog: pytest.LogCaptureFixture) -> None:
    """aug_smooth: 5 more copies of the input, each with the method's own passes."""
    ex = Explainer.load(REPO / "models" / "fruit", num_threads=1)
    k = ex.head.input_shape[-1]
    assert trunk_pass_ms(ex, "gradcam", aug_smooth=True)[0] == 5  # type: ignore[index]
    assert trunk_pass_ms(ex, "scorecam", aug_smooth=True)[0] == 6 * (1 + k) - 1  # type: ignore[index]
    with caplog.at_level(logging.WARNING, logger="edge.service.method_cost"):
        assert warn_if_too_slow(ex, "gradcam", 1e4, aug_smooth=True)
        assert not warn_if_too_slow(ex, "gradcam", 1e4)
    warnings = [r for r in caplog.records if r.name == "edge.service.method_cost"]
    assert [w.getMessage()[:58] for w in warnings] == ["method gradcam with aug_smooth runs the feature model 5 ti"]


def test_a_method_chosen_in_the_browser_view_is_checked_once() -> None:
    """edge run at 240 fps with Grad-CAM (no warning), then the browser view's controls choose Score-CAM (k + 1
    trunk passes, some ms here): its warning appears in the service's log once, however often it is chosen again."""
    with EdgeProcess(["--source", f"images:{REPO / 'samples'}", "--repeat", "--fps", "240"]) as edge:
        port = int(edge.url.rsplit(":", 1)[1].split("/")[0])

        def choose(method: str) -> None:
            answer = ask(port, "/api/controls", "POST", headers={"Content-Type": "application/json"},
                         body=json.dumps({"method": method}).encode())
            assert answer.status == 200, answer.body

        def warnings() -> int:
            return "".join(edge.stderr).count("method scorecam runs the feature model")

        choose("scorecam")
        deadline = time.monotonic() + 60
        while not warnings():
            assert time.monotonic() < deadline, "".join(edge.stderr[-20:])
            time.sleep(0.1)
        for method in ("gradcam", "scorecam", "gradcam", "scorecam"):
            choose(method)
            time.sleep(0.5)  # the loop reads the controls once per frame: it sees each choice
        assert warnings() == 1, "".join(edge.stderr[-20:])
    assert "cannot keep 240 fps" in "".join(edge.stderr)
