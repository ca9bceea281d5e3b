"""Rendering: pure functions over frames and CAMs, checked on pixels."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge.explain.explainer import Explanation
from edge.explain.render import (
    PALETTE,
    CamSmoother,
    RenderConfig,
    colorize,
    draw_text,
    draw_top_k,
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


def _whole_frame_overlay(frame: np.ndarray, cam: np.ndarray, config: RenderConfig, class_index: int) -> np.ndarray:
    """The reference: colour and blend every pixel of the frame, keep the blend where the map reaches the threshold
    (what overlay_heatmap computes within a box only)."""
    height, width = frame.shape[:2]
    levels = cv2.convertScaleAbs(np.clip(cam, 0.0, 1.0), alpha=255.0)
    levels = cv2.resize(levels, (width, height), interpolation=cv2.INTER_LINEAR)
    lut = cv2.applyColorMap(np.arange(256, dtype=np.uint8).reshape(256, 1), cv2.COLORMAP_JET)[:, :, ::-1]
    if config.colormap == "tint":
        lut = colorize(np.arange(256, dtype=np.float32).reshape(256, 1) / 255.0, "tint", class_index)
    colors = np.ascontiguousarray(lut.reshape(256, 3)[levels])
    mixed = cv2.addWeighted(frame, 1.0 - config.alpha, colors, config.alpha, 0.0)
    keep = levels >= np.ceil(config.threshold * 255.0 - 1e-6)
    return np.where(keep[:, :, None], mixed, frame)


@pytest.mark.parametrize("seed", range(6))
def test_overlay_drawn_in_a_box_equals_the_whole_frame_blend(seed: int) -> None:
    rng = np.random.default_rng(seed)
    frame = rng.integers(0, 256, (int(rng.integers(30, 500)), int(rng.integers(30, 700)), 3), dtype=np.uint8)
    cam = np.zeros((12, 12), np.float32)
    r, c = rng.integers(0, 12, 2)
    cam[r:r + int(rng.integers(1, 5)), c:c + int(rng.integers(1, 5))] = rng.uniform(0.6, 1.0)  # a blob, edges too
    cam = cam + rng.random((12, 12), dtype=np.float32) * 0.15 * (seed % 2)  # odd seeds: faint noise everywhere
    config = RenderConfig(alpha=float(rng.uniform(0.2, 0.8)), threshold=float(rng.uniform(0.05, 0.5)),
                          colormap=("jet", "tint")[seed % 3 == 0])
    out = overlay_heatmap(frame, cam, config, class_index=seed % 3)
    assert np.array_equal(out, _whole_frame_overlay(frame, cam, config, seed % 3))
    assert (out != frame).any()  # the blob was drawn
    nothing = overlay_heatmap(frame, np.zeros((12, 12), np.float32), config)
    assert np.array_equal(nothing, frame) and nothing is not frame


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


def test_text_is_drawn_once_and_pasted_the_same_every_frame() -> None:
    frame = np.random.default_rng(3).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    once = draw_text(frame, "Tomate 97%", (5, 7), scale=0.8)
    # The reference: a dark box and anti-aliased text drawn straight onto the frame.
    scale, thickness = 0.8, 2
    (tw, th), baseline = cv2.getTextSize("Tomate 97%", cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    pad = 3
    direct = frame.copy()
    cv2.rectangle(direct, (5, 7), (5 + tw + 2 * pad, 7 + th + baseline + 2 * pad), (0, 0, 0), thickness=-1)
    cv2.putText(direct, "Tomate 97%", (5 + pad, 7 + pad + th), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255),
                thickness, cv2.LINE_AA)
    box = np.s_[7:7 + th + baseline + 2 * pad + 1, 5:5 + tw + 2 * pad + 1]
    assert np.array_equal(once[box], direct[box]) and once[box].max() == 255  # the text is there
    outside = np.ones(frame.shape[:2], bool)
    outside[box] = False
    assert np.array_equal(once[outside], frame[outside])
    assert np.array_equal(draw_text(frame, "Tomate 97%", (5, 7), scale=0.8), once)  # from the cache: the same
    corner = draw_text(frame, "Tomate 97%", (300, 230), scale=0.8)  # clipped at the frame's edge, no error
    assert np.array_equal(corner[:230], frame[:230]) and not np.array_equal(corner[230:, 300:], frame[230:, 300:])


def test_top_k_rows_show_each_probability_as_a_bar() -> None:
    frame = np.full((240, 320, 3), 90, np.uint8)
    panel = draw_top_k(frame, [("Orange", 0.75), ("Tomate", 0.25)])
    orange = np.all(panel == (0, 140, 255), axis=2)  # the filled part of the bars
    rows = np.flatnonzero(orange.any(axis=1))
    first, second = orange[rows[0]].sum(), orange[rows[-1]].sum()
    assert first == pytest.approx(3 * second, rel=0.2) and first <= 80
    assert np.array_equal(panel[:150], frame[:150])  # bottom-left only


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
