"""$FAKE_PICAMERA2_JOURNAL: a JSON-lines file of the fake's calls, for tests that run edge in a subprocess."""

from __future__ import annotations

import json
import os
from typing import Any


def journal(event: str, **fields: Any) -> None:
    path = os.environ.get("FAKE_PICAMERA2_JOURNAL")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"event": event, **fields}) + "\n")
