"""--classes-file: plain lines, ImageNet synset lines and Keras's class index JSON; duplicates made unique."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from tools.export.class_names import ClassNamesError, read_class_names, summary


def test_one_name_per_line_blank_lines_ignored(tmp_path: Path) -> None:
    path = tmp_path / "labels.txt"
    path.write_text("Apfel\n\n  Orange \nTomate\n", encoding="utf-8")
    assert read_class_names(path) == ["Apfel", "Orange", "Tomate"]


def test_imagenet_synset_lines_keep_the_first_synonym(tmp_path: Path) -> None:
    path = tmp_path / "synset_words.txt"
    path.write_text("n01440764 tench, Tinca tinca\nn01443537 goldfish, Carassius auratus\n"
                    "n01484850 great white shark, white shark, man-eater\n", encoding="utf-8")
    assert read_class_names(path) == ["tench", "goldfish", "great white shark"]


def test_keras_class_index_json_in_index_order(tmp_path: Path) -> None:
    path = tmp_path / "imagenet_class_index.json"
    index = {"1": ["n01443537", "goldfish"], "0": ["n01440764", "tench"], "2": ["n01484850", "great_white_shark"]}
    path.write_text(json.dumps(index), encoding="utf-8")
    assert read_class_names(path) == ["tench", "goldfish", "great_white_shark"]


def test_duplicates_are_made_unique_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "synsets.txt"
    lines = ["n02012849 crane", "n01440764 tench", "n03126707 crane", "n03710637 maillot",
             "n03710721 maillot, tank suit"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="tools.export"):
        names = read_class_names(path)
    assert names == ["crane", "tench", "crane_2", "maillot", "maillot_4"]
    assert len(set(names)) == len(names)
    assert "2 duplicate class name(s)" in caplog.text and "'crane' -> 'crane_2'" in caplog.text


@pytest.mark.parametrize(("content", "message"), [
    ("", "no class names"),
    ('{"0": ["n1", "a"], "2": ["n2", "b"]}', "without gaps"),
    ('{"zero": ["n1", "a"]}', "not a class index JSON"),
])
def test_bad_files_are_one_clear_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "classes.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ClassNamesError, match=message):
        read_class_names(path)
    with pytest.raises(ClassNamesError, match="cannot read"):
        read_class_names(tmp_path / "missing.txt")


def test_summary_shows_the_count_and_the_first_names() -> None:
    names = [f"class_{i}" for i in range(1000)]
    assert summary(names) == "1000 classes: class_0, class_1, class_2, class_3, class_4, ..."
    assert summary(["a", "b"]) == "2 classes: a, b"
