"""A trunk-pass CAM method (Score-CAM and kin) runs the feature model k or more times a frame, aug_smooth 5 more times
(each pass of the method's too): the service says at start when the configured method cannot keep the configured frame
rate (measured here, on this CPU)."""

from __future__ import annotations

import logging
import time

import numpy as np

from edge.explain.cam import get_method
from edge.explain.cam.smoothing import AUG_SMOOTH_PASSES
from edge.explain.explainer import Explainer

_LOGGER = logging.getLogger(__name__)


def trunk_pass_ms(explainer: Explainer, method_name: str, aug_smooth: bool = False) -> tuple[int, float] | None:
    """(feature-model passes per frame beyond the frame's own, their estimated ms) of a trunk-pass method or of any
    method with aug_smooth; None for any other."""
    passes = getattr(get_method(method_name), "trunk_passes", None)
    if passes is None and not aug_smooth:
        return None
    count = 0 if passes is None else int(passes(explainer.head.input_shape[-1]))
    if aug_smooth:  # the method on each of the augmented copies, and the copies themselves
        count = (count + 1) * (AUG_SMOOTH_PASSES + 1) - 1
    x = np.zeros(explainer.manifest.input_shape, np.float32)  # (h_in, w_in, c) model input
    explainer.features(x)  # warm
    start = time.perf_counter()
    explainer.features(x)
    return count, count * (time.perf_counter() - start) * 1e3


def warn_if_too_slow(explainer: Explainer, method_name: str, fps: float | None, *, aug_smooth: bool = False) -> bool:
    """Log a warning when the method's trunk passes take longer than one frame at `fps` (None or 0: unpaced, so no
    rate to keep). True when it warned."""
    cost = trunk_pass_ms(explainer, method_name, aug_smooth)
    if cost is None or not fps:
        return False
    count, ms = cost
    if ms <= 1e3 / fps:
        return False
    _LOGGER.warning("method %s runs the feature model %d times a frame (~%.0f ms here): it cannot keep %g fps; "
                    "use it on demand (a snapshot, the dashboard's method) or lower the frame rate",
                    f"{method_name} with aug_smooth" if aug_smooth else method_name, count, ms, fps)
    return True
