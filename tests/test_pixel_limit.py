"""[source] max_megapixels: image sizes read from headers, oversized images refused before decoding (counted, one
line each), oversized videos and capture sizes refused at open."""

from __future__ import annotations

import logging
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.sources import ImageFolderSource, OpenCVSource, SourceConfig, SourceError, SyntheticSource
from edge.sources.base import ImageTooLargeError
from edge.sources.header import image_size

W, H = 37, 23  # odd on purpose: nothing may round


@pytest.mark.parametrize(("ext", "params"), [
    (".png", []), (".jpg", []), (".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]), (".bmp", []),
    (".webp", [cv2.IMWRITE_WEBP_QUALITY, 80]), (".webp", [cv2.IMWRITE_WEBP_QUALITY, 101]),  # lossy VP8, lossless VP8L
    (".tiff", []), (".ppm", []), (".pgm", []),
])
def test_header_sizes(ext: str, params: list[int]) -> None:
    image = np.random.default_rng(1).integers(0, 256, (H, W, 3), np.uint8)
    if ext == ".pgm":
        image = image[:, :, 0]
    ok, data = cv2.imencode(ext, image, params)
    assert ok
    assert image_size(data.tobytes()) == (W, H)


def test_header_of_what_is_not_an_image() -> None:
    _, png = cv2.imencode(".png", np.zeros((4, 4), np.uint8))
    assert image_size(png.tobytes()[:20]) is None  # cut inside the IHDR
    assert image_size(b"\xff\xd8\xff\xe0 not really a jpeg") is None
    assert image_size(b"hello, world") is None


def _png_header_claiming(width: int, height: int) -> bytes:
    """A PNG whose IHDR says width x height (and a CRC that matches), with one tiny IDAT: a decompression bomb's
    header, without writing gigabytes here."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    idat = b"IDAT" + zlib.compress(b"\0" * 64)
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))
            + struct.pack(">I", len(idat) - 4) + idat + struct.pack(">I", zlib.crc32(idat)))


def test_oversized_images_are_refused_before_decoding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    cv2.imwrite(str(folder / "a_small.png"), np.full((50, 50, 3), 90, np.uint8))  # 2,500 px
    cv2.imwrite(str(folder / "b_big.jpg"), np.full((100, 200, 3), 90, np.uint8))  # 20,000 px
    (folder / "c_bomb.png").write_bytes(_png_header_claiming(20000, 20000))  # 400 MP
    decoded: list[int] = []
    real_imdecode = cv2.imdecode

    def spy(data: np.ndarray, flags: int) -> np.ndarray | None:
        decoded.append(data.size)
        return real_imdecode(data, flags)

    monkeypatch.setattr(cv2, "imdecode", spy)
    with caplog.at_level(logging.WARNING), ImageFolderSource(folder, SourceConfig(max_megapixels=0.01)) as source:
        frames = [source.read(), source.read()]
        assert source.skipped == 2
    assert frames[0] is not None and frames[0].name == "a_small.png" and frames[1] is None
    assert len(decoded) == 1  # only the small one reached the decoder
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2 and all("max_megapixels limit of 0.01 MP" in w for w in warnings)
    assert "200x100 is 0.0 MP" in warnings[0] and "(1 skipped so far)" in warnings[0]
    assert "20000x20000 is 400.0 MP" in warnings[1] and "(2 skipped so far)" in warnings[1]


def test_default_limit_refuses_a_bomb_and_keeps_normal_images(tmp_path: Path) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    (folder / "bomb.png").write_bytes(_png_header_claiming(20000, 20000))
    cv2.imwrite(str(folder / "photo.jpg"), np.full((480, 640, 3), 90, np.uint8))
    with ImageFolderSource(folder) as source:
        frame = source.read()
        assert frame is not None and frame.name == "photo.jpg" and source.skipped == 1


def test_oversized_video_is_refused_at_open(tmp_path: Path) -> None:
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for _ in range(3):
        writer.write(np.full((48, 64, 3), 90, np.uint8))
    writer.release()
    with pytest.raises(ImageTooLargeError, match="64x48"):
        OpenCVSource(str(path), SourceConfig(max_megapixels=0.001)).open()
    with OpenCVSource(str(path), SourceConfig(max_megapixels=0.01)) as source:  # 3,072 px: fine
        assert source.read() is not None


def test_capture_sizes_beyond_the_limit_are_config_errors() -> None:
    with pytest.raises(SourceError, match="max_megapixels"):
        SyntheticSource(SourceConfig(width=8192, height=8192))
    with pytest.raises(SourceError, match="max_megapixels"):
        OpenCVSource(0, SourceConfig(width=8192, height=8192)).open()
