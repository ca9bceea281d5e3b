"""Frame sources: images:, video:, camera:, synthetic, and the registry, on real files written here."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.sources import (
    SOURCES,
    ImageFolderSource,
    OpenCVSource,
    SourceConfig,
    SourceError,
    SyntheticSource,
    create_source,
    parse_spec,
    to_rgb8,
)
from edge.sources.base import SourceUnavailableError


def _write_images(folder: Path) -> dict[str, np.ndarray]:
    """Images in several storage forms; returns the RGB each should read as."""
    folder.mkdir()
    rgb = np.zeros((12, 16, 3), np.uint8)
    rgb[..., 0] = 200  # pure red
    cv2.imwrite(str(folder / "b_color.png"), rgb[:, :, ::-1])
    gray = np.full((12, 16), 77, np.uint8)
    cv2.imwrite(str(folder / "a_gray.png"), gray)
    rgba = np.dstack([rgb[:, :, ::-1], np.full((12, 16), 10, np.uint8)])
    cv2.imwrite(str(folder / "c_alpha.png"), rgba)
    deep = np.full((12, 16, 3), 40000, np.uint16)
    cv2.imwrite(str(folder / "d_16bit.png"), deep)
    (folder / "e_truncated.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (folder / "notes.txt").write_text("not an image, not counted")
    return {"a_gray.png": np.full((12, 16, 3), 77, np.uint8), "b_color.png": rgb, "c_alpha.png": rgb,
            "d_16bit.png": np.full((12, 16, 3), 40000 >> 8, np.uint8)}


def test_images_sorted_converted_and_bad_files_skipped(tmp_path: Path) -> None:
    expected = _write_images(tmp_path / "imgs")
    with ImageFolderSource(tmp_path / "imgs") as source:
        frames = []
        while (frame := source.read()) is not None:
            frames.append(frame)
        assert source.skipped == 1
    assert [f.name for f in frames] == sorted(expected)
    assert [f.index for f in frames] == [0, 1, 2, 3]
    for frame in frames:
        assert frame.image.dtype == np.uint8 and frame.image.shape == (12, 16, 3)
        assert np.array_equal(frame.image, expected[frame.name]), frame.name
    assert source.live is False


def test_images_repeat_starts_again(tmp_path: Path) -> None:
    _write_images(tmp_path / "imgs")
    with ImageFolderSource(tmp_path / "imgs", SourceConfig(repeat=True)) as source:
        names = [source.read().name for _ in range(6)]  # type: ignore[union-attr]
    assert names == ["a_gray.png", "b_color.png", "c_alpha.png", "d_16bit.png", "a_gray.png", "b_color.png"]


def test_images_errors_name_the_folder(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="not a directory"):
        ImageFolderSource(tmp_path / "missing").open()
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="no image files"):
        ImageFolderSource(tmp_path / "empty").open()


@pytest.mark.parametrize(("array", "expected"), [
    (np.full((2, 3), 9, np.uint8), (9, 9, 9)),
    (np.full((2, 3, 1), 9, np.uint8), (9, 9, 9)),
    (np.dstack([np.full((2, 3), c, np.uint8) for c in (1, 2, 3, 4)]), (3, 2, 1)),  # BGRA -> RGB
    (np.full((2, 3, 3), 0.5, np.float32), (128, 128, 128)),
    (np.full((2, 3, 3), 65535, np.uint16), (255, 255, 255)),
])
def test_to_rgb8_converts(array: np.ndarray, expected: tuple[int, int, int]) -> None:
    out = to_rgb8(array, "BGR")
    assert out.shape == (2, 3, 3) and out.dtype == np.uint8 and out.flags.c_contiguous
    assert tuple(out[1, 2]) == expected


@pytest.mark.parametrize("shape", [(0, 3, 3), (5,), (2, 3, 5), (2, 2, 2, 3)])
def test_to_rgb8_rejects_non_images(shape: tuple[int, ...]) -> None:
    with pytest.raises(SourceError, match="not an image"):
        to_rgb8(np.zeros(shape, np.uint8))


def test_video_file_every_frame_then_end(tmp_path: Path) -> None:
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (32, 24))
    assert writer.isOpened()
    for i in range(5):
        writer.write(np.full((24, 32, 3), (0, 0, 40 * i), np.uint8))  # BGR: red rising
    writer.release()
    with create_source(SourceConfig(spec=f"video:{path}")) as source:
        assert isinstance(source, OpenCVSource) and not source.live
        frames = []
        while (frame := source.read()) is not None:
            frames.append(frame)
    assert len(frames) == 5
    reds = [int(f.image[12, 16, 0]) for f in frames]
    assert reds == sorted(reds) and reds[-1] > 140  # RGB order: red is channel 0
    assert all(abs(int(f.image[12, 16, 2])) < 20 for f in frames)


def test_opencv_sources_fail_with_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="cannot open"):
        create_source(SourceConfig(spec=f"video:{tmp_path / 'none.mp4'}")).open()
    with pytest.raises(SourceError, match="device number"):
        create_source(SourceConfig(spec="camera:front"))
    assert create_source(SourceConfig(spec="video:rtsp://127.0.0.1:9/x")).live


def test_synthetic_is_deterministic_sized_and_paced() -> None:
    config = SourceConfig(spec="synthetic", width=64, height=48)
    a, b = SyntheticSource(config), SyntheticSource(config)
    fa, fb = a.read(), b.read()
    assert fa is not None and fb is not None
    assert fa.image.shape == (48, 64, 3) and np.array_equal(fa.image, fb.image)
    second = a.read()
    assert second is not None and second.index == 1 and not np.array_equal(second.image, fa.image)
    assert not a.live
    paced = SyntheticSource(SourceConfig(width=32, height=32, fps=50))
    assert paced.live
    t0 = time.monotonic()
    for _ in range(6):
        paced.read()
    assert time.monotonic() - t0 >= 5 / 50 * 0.9


def test_registry_parses_and_rejects() -> None:
    assert set(SOURCES) == {"picamera2", "camera", "video", "images", "synthetic", "imx500"}
    assert parse_spec("images:a:b") == ("images", "a:b")
    assert parse_spec("camera:1") == ("camera", "1")
    with pytest.raises(SourceError, match="unknown source"):
        parse_spec("webcam")
    with pytest.raises(SourceError, match="needs an argument"):
        parse_spec("images:")
    with pytest.raises(SourceError, match=r"source imx500: needs an argument, e\.g\. imx500:BUNDLE"):
        parse_spec("imx500")


def test_absent_camera_is_unavailable_but_a_missing_file_is_an_error(tmp_path: Path) -> None:
    """A webcam not plugged in yet is waited for at start (SourceUnavailableError); a missing file is a mistake."""
    with pytest.raises(SourceUnavailableError, match="camera:97: cannot open"):
        OpenCVSource(97).open()
    with pytest.raises(SourceError, match="no such file") as info:
        OpenCVSource(str(tmp_path / "missing.mp4")).open()
    assert not isinstance(info.value, SourceUnavailableError)
