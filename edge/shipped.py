"""The files that ship with edge-explainer (the demo bundles models/fruit[-int8] and the sample images), found from
any working directory.

A checkout has them at its root. An installed wheel carries copies in edge/_data/ (pyproject.toml force-includes them
there at build time), so `edge-explainer run --source images:samples` works after `pip install` too: a relative path
that does not exist under the working directory is looked up in the package data, then in the checkout.
"""

from __future__ import annotations

import logging
from pathlib import Path

_LOGGER = logging.getLogger(__name__)

PACKAGE_DATA = Path(__file__).resolve().parent / "_data"
_ROOT = Path(__file__).resolve().parent.parent
# Only a checkout's root: for an installed package this is site-packages, where models/ or samples/ would be another
# distribution's files.
CHECKOUT = _ROOT if (_ROOT / "pyproject.toml").is_file() and (_ROOT / "edge" / "shipped.py").is_file() else None


def find(path: str | Path) -> Path:
    """path itself when it is absolute or exists (relative to the working directory), else the shipped file or folder
    of that relative path, else path unchanged (so that the error names what the user wrote)."""
    candidate = Path(path)
    if candidate.is_absolute() or candidate.exists():
        return candidate
    for root in (PACKAGE_DATA, CHECKOUT):
        if root is not None and (root / candidate).exists():
            _LOGGER.info("%s: not in %s; using the shipped %s", path, Path.cwd(), root / candidate)
            return root / candidate
    return candidate
