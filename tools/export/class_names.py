"""--classes-file: class names from the files ImageNet-style models come with.

Three forms: one name per line; ImageNet synset lines (`n01440764 tench, Tinca tinca` -> `tench`, the first of the
synonyms); Keras's imagenet_class_index.json (`{"0": ["n01440764", "tench"], ...}`). ImageNet names are not unique
(two "crane"s, two "maillot"s): duplicates get their index appended, with a warning, rather than being refused.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

from edge.explain.class_names import summary as class_summary
from tools.export.front_end import ExportError

_LOGGER = logging.getLogger("tools.export")
_SYNSET = re.compile(r"^n\d{8}\s+(.+)$")  # WordNet id, then comma-separated synonyms


class ClassNamesError(ExportError, ValueError):
    """The classes file is missing, empty or not in a known form."""


def read_class_names(path: Path) -> list[str]:
    """The class names in `path`, in class-index order, made unique."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ClassNamesError(f"{path}: cannot read the classes file ({e})") from e
    names = _from_json(path, text) if text.lstrip().startswith("{") else _from_lines(text)
    if not names:
        raise ClassNamesError(f"{path}: no class names in it")
    return make_unique(names, str(path))


def _from_lines(text: str) -> list[str]:
    names = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        synset = _SYNSET.match(line)
        names.append(synset.group(1).split(",")[0].strip() if synset else line)
    return names


def _from_json(path: Path, text: str) -> list[str]:
    """Keras's imagenet_class_index.json: {"index": [synset id, name]}."""
    try:
        raw = json.loads(text)
        indices = sorted(int(k) for k in raw)
        entries = [raw[str(i)] for i in indices]
        names = [str(entry[1]) if isinstance(entry, list) else str(entry) for entry in entries]
    except (json.JSONDecodeError, ValueError, IndexError, TypeError) as e:
        raise ClassNamesError(f"{path}: not a class index JSON like Keras's imagenet_class_index.json ({e})") from e
    if indices != list(range(len(indices))):
        raise ClassNamesError(f"{path}: class indices must run 0..{len(indices) - 1} without gaps")
    return names


def make_unique(names: list[str], source: str) -> list[str]:
    """Every repeated name gets its class index appended (`crane` and `crane_517`), with one warning."""
    seen: set[str] = set()
    unique, renamed = [], []
    for i, name in enumerate(names):
        if name in seen:
            new = f"{name}_{i}"
            renamed.append(f"{name!r} -> {new!r}")
            name = new
        seen.add(name)
        unique.append(name)
    if renamed:
        _LOGGER.warning("%s: %d duplicate class name(s) made unique: %s", source, len(renamed), ", ".join(renamed))
    return unique


summary = class_summary  # the export's success line says it as the device's log lines do
