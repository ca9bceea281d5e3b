"""Contact sheets: the title is whole on a narrow sheet (verify's three tiles are 480 px wide)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from tools.common.contact_sheet import write_sheet
from tools.verify.verifier import sheet_title


def test_a_title_wider_than_the_sheet_wraps_instead_of_running_off_its_edge(tmp_path: Path) -> None:
    tile = np.full((40, 40, 3), 128, np.uint8)  # (H, W, 3) uint8 RGB
    for title, lines in (("short", 1), (sheet_title("gradcampp"), 2)):
        write_sheet(tmp_path / "s.png", [[(tile, "a"), (tile, "b"), (tile, "c")]], tile=160, title=title)
        sheet = cv2.imread(str(tmp_path / "s.png"))
        header = sheet[: sheet.shape[0] - 182]  # above the row of tiles (160 + a 22 px caption bar)
        assert header.shape[0] == 8 + 22 * lines, header.shape
        assert header[:, -8:].min() == 255  # no ink at the right edge: nothing cut
