"""Home Assistant's own MQTT code judging what a device published: the venv scripts/ha-venv makes (homeassistant
2024.3.3, cached in build/ by requirements-ha.txt's content; scripts/test starts making it before pytest) and
tests/ha_check.py run under it. $EDGE_HA_PYTHON names another Python with homeassistant instead. Tests skip, with the
reason, only where the machine has no Python 3.11 to make the venv with."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from typing import Any

import pytest
from broker import Received
from conftest import REPO, scripted_venv

REQUIREMENTS = REPO / "requirements-ha.txt"


def venv_key() -> str:
    return hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:12]


@pytest.fixture(scope="session")
def ha_python() -> str:
    if os.environ.get("EDGE_HA_PYTHON"):
        return os.environ["EDGE_HA_PYTHON"]
    return scripted_venv("ha-venv", REPO / "build" / f"ha-venv-{venv_key()}", timeout=1200).strip().splitlines()[-1]


def ha_judge(python: str, configs: dict[str, dict[str, Any]], received: list[Received]) -> dict[str, Any]:
    """{"version": HA's, "results": {config topic: verdict}} from tests/ha_check.py, given the retained configs and the
    messages a subscriber received on the topics they read (each topic's last 20)."""
    read = {c[k] for c in configs.values() for k in ("state_topic", "json_attributes_topic") if k in c}
    messages: dict[str, list[str]] = {}
    for m in received:
        if m.topic in read:
            messages.setdefault(m.topic, []).append(m.payload.decode())
    messages = {t: texts[-20:] for t, texts in messages.items()}
    check = subprocess.run([python, str(REPO / "tests" / "ha_check.py")],
                           input=json.dumps({"configs": configs, "messages": messages}), capture_output=True,
                           text=True, timeout=300, check=False)
    assert check.returncode == 0, check.stderr[-3000:]
    report: dict[str, Any] = json.loads(check.stdout)
    print(f"Home Assistant {report['version']}: {json.dumps(report['results'], indent=1)}")
    return report
