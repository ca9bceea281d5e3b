"""systemd/install-etc.sh, run for real on a temporary /etc: config and token 0640 with the service's group, never
world-readable; an existing token is kept; a config an older install.sh left 0644 is tightened."""

from __future__ import annotations

import grp
import os
import re
import stat
import subprocess
from pathlib import Path

from conftest import REPO

from edge.http import resolve_token
from edge.service.config import load_config

SCRIPT = REPO / "systemd" / "install-etc.sh"


def _install(etc: Path) -> None:
    group = grp.getgrgid(os.getgid()).gr_name  # root's in CI; the runner's own group elsewhere
    subprocess.run(["sh", str(SCRIPT), str(REPO / "systemd" / "config.toml"), str(etc), group], check=True,
                   capture_output=True, text=True, timeout=30)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_config_and_token_are_0640_and_the_token_is_kept(tmp_path: Path) -> None:
    etc = tmp_path / "etc" / "edge-explainer"
    _install(etc)
    config, token_file = etc / "config.toml", etc / "http-token"
    assert _mode(config) == 0o640 and _mode(token_file) == 0o640
    assert config.stat().st_gid == os.getgid() == token_file.stat().st_gid
    token = token_file.read_text()
    assert re.fullmatch(r"[A-Za-z0-9_-]{32}\n", token)  # URL-safe: nothing to encode in ?token=
    shipped = load_config(REPO / "systemd" / "config.toml").http
    assert shipped.token_file == "/etc/edge-explainer/http-token" and not shipped.token  # the config points at it
    assert resolve_token(type(shipped)(token_file=str(token_file))) == token.strip()
    config.chmod(0o644)  # as an older install.sh left it
    _install(etc)
    assert _mode(config) == 0o640 and token_file.read_text() == token
