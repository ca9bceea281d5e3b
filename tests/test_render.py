"""Rendering: pure functions over frames and CAMs, checked on pixels."""

from __future__ import annotations

import numpy as np
import pytest

from edge.explainer import Explanation
from edge.render import (
    PALETTE,
    CamSmoother,
    RenderConfig,
    colorize,
    heatmap_rgba,
    overlay_heatmap,
    render,
    top_entries,
    upsample,
)


def _explanation(cam: np.ndarray, class_index: int = 1) -> Explanation:
    probabilities = np.array([0.1, 0.7, 0.2], np.float32)
    return Explanation(probabilities=probabilities, class_index=class_index, label=["a", "b", "c"][class_index],
                       score=1.0, cam=cam, cam_raw=cam, method="gradcam")


def _half_cam() -> np.ndarray:
    """Right half hot (1.0), left half cold (0.0)."""
    cam = np.zeros((4, 4), np.float32)
    cam[:, 2:] = 1.0
    return cam


def test_upsample_keeps_range_and_size() -> None:
    up = upsample(np.array([[0, 1], [1, 0]], np.float32), (30, 50))
    assert up.shape == (30, 50) and up.dtype == np.float32
    assert up.min() >= 0.0 and up.max() <= 1.0
    assert up[0, 0] < 0.2 and up[0, -1] > 0.8


def test_threshold_leaves_cold_pixels_untouched_and_colours_hot_ones() -> None:
    frame = np.full((40, 40, 3), 128, np.uint8)
    out = overlay_heatmap(frame, _half_cam(), RenderConfig(alpha=0.5, threshold=0.2))
    assert np.array_equal(out[:, :12], frame[:, :12])  # cold side: below the threshold, frame unchanged
    # hot side: jet at 1.0 is dark red (RGB ~ (128, 0, 0)); half of it on grey 128
    assert out[20, 35, 0] > 120 and out[20, 35, 2] < 80


def test_alpha_zero_is_identity_and_alpha_one_is_the_colormap() -> None:
    frame = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    cam = np.ones((2, 2), np.float32)
    assert np.array_equal(overlay_heatmap(frame, cam, RenderConfig(alpha=0.0)), frame)
    full = overlay_heatmap(frame, cam, RenderConfig(alpha=1.0, threshold=0.0))
    assert np.array_equal(full, colorize(np.ones((16, 16), np.float32), "jet"))


def test_tint_uses_the_class_colour() -> None:
    colors = colorize(np.ones((3, 3), np.float32), "tint", class_index=2)
    assert tuple(colors[1, 1]) == PALETTE[2]
    assert not colorize(np.zeros((3, 3), np.float32), "tint", class_index=2).any()


def test_inputs_are_never_modified() -> None:
    frame = np.random.default_rng(1).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    cam = np.random.default_rng(2).random((4, 4), dtype=np.float32)
    frame_copy, cam_copy = frame.copy(), cam.copy()
    ex = _explanation(cam)
    render(frame, ex, RenderConfig(), top=[("b", 0.7), ("c", 0.2)], fps=12.0)
    heatmap_rgba(cam, (10, 10), RenderConfig())
    CamSmoother(0.5).update(cam, 1)
    assert np.array_equal(frame, frame_copy) and np.array_equal(cam, cam_copy)


def test_render_draws_label_panel_and_fps_only_when_enabled() -> None:
    frame = np.full((240, 320, 3), 90, np.uint8)
    ex = _explanation(np.zeros((4, 4), np.float32))  # cold map: only text changes pixels
    top = [("b", 0.7), ("c", 0.2)]
    plain = render(frame, ex, RenderConfig(show_label=False, show_top_k=False, show_fps=False), top=top, fps=5.0)
    assert np.array_equal(plain, frame)
    labelled = render(frame, ex, RenderConfig(show_top_k=False, show_fps=False), top=top)
    assert not np.array_equal(labelled[:30, :100], frame[:30, :100])  # label box top-left
    assert np.array_equal(labelled[-30:], frame[-30:])
    panel = render(frame, ex, RenderConfig(show_label=False, show_fps=False), top=top)
    assert not np.array_equal(panel[-30:, :80], frame[-30:, :80])  # panel bottom-left
    fps = render(frame, ex, RenderConfig(show_label=False, show_top_k=False), fps=9.5)
    assert not np.array_equal(fps[:25, -80:], frame[:25, -80:])  # fps top-right


def test_heatmap_rgba_alpha_follows_threshold() -> None:
    rgba = heatmap_rgba(_half_cam(), (20, 20), RenderConfig(alpha=0.5, threshold=0.2))
    assert rgba.shape == (20, 20, 4) and rgba.dtype == np.uint8
    assert (rgba[:, :6, 3] == 0).all()
    assert (rgba[:, 14:, 3] == 128).all()


def test_top_entries_best_first() -> None:
    assert top_entries(np.array([0.2, 0.5, 0.3], np.float32), ["x", "y", "z"], 2) == [
        ("y", pytest.approx(0.5)), ("z", pytest.approx(0.3))]


def test_smoother_averages_and_restarts_on_class_change() -> None:
    smoother = CamSmoother(0.5)
    a = np.zeros((2, 2), np.float32)
    b = np.ones((2, 2), np.float32)
    assert np.array_equal(smoother.update(a, 0), a)
    np.testing.assert_allclose(smoother.update(b, 0), 0.5)
    np.testing.assert_allclose(smoother.update(b, 0), 0.75)
    assert np.array_equal(smoother.update(a, 1), a)  # new class: no memory of the old map
    with pytest.raises(ValueError, match="smoothing"):
        CamSmoother(1.0)
