"""The session cookie: good in the process that issued it only (not after a restart, nor on another device or port
sharing the token), expired on the server after its life; tokens under 16 characters refused in one line."""

from __future__ import annotations

from http.cookies import SimpleCookie
from pathlib import Path

import pytest
from conftest import REPO, run_python
from http_client import ask

from edge.http.gate import MIN_TOKEN, SESSION_S
from edge.http.sink import DashboardConfig, DashboardSink
from edge.records import SinkError

TOKEN = "k" * MIN_TOKEN


def _view() -> DashboardSink:
    view = DashboardSink(DashboardConfig(enabled=True, port=0, token=TOKEN))
    view.open()
    view.hub.publish(b"\xff\xd8 a jpeg", {"label": "Apfel", "frame": 1})
    return view


def _cookie(view: DashboardSink) -> str:
    answer = ask(view.port, f"/?token={TOKEN}")
    assert answer.status == 303
    morsel = SimpleCookie(answer.headers["set-cookie"])[view.gate.cookie_name]
    return f"{morsel.key}={morsel.value}"


def test_a_cookie_is_good_for_its_process_and_its_life_only() -> None:
    first, second = _view(), _view()
    try:
        cookie = _cookie(first)
        assert ask(first.port, "/prediction.json", headers={"Cookie": cookie}).status == 200
        renamed = cookie.replace(first.gate.cookie_name, second.gate.cookie_name)
        assert ask(second.port, "/prediction.json", headers={"Cookie": renamed}).status == 401  # a restart, a twin
        issued = first.gate.clock()
        first.gate.clock = lambda: issued + SESSION_S + 5
        assert ask(first.port, "/prediction.json", headers={"Cookie": cookie}).status == 401  # expired
        first.gate.clock = lambda: issued + 3600
        assert ask(first.port, "/prediction.json", headers={"Cookie": cookie}).status == 200
        forged = cookie.split("=")[0] + "=" + str(int(issued) + 10**6) + "." + cookie.split(".")[-1]
        assert ask(first.port, "/prediction.json", headers={"Cookie": forged}).status == 401
    finally:
        first.close()
        second.close()


@pytest.mark.parametrize("token", [" ", "x", "k" * (MIN_TOKEN - 1)])
def test_short_tokens_are_refused(token: str, tmp_path: Path) -> None:
    with pytest.raises(SinkError, match=f"fewer than {MIN_TOKEN}"):
        DashboardSink(DashboardConfig(enabled=True, port=0, host="0.0.0.0", token=token))
    (tmp_path / "token").write_text(token + "\n")
    with pytest.raises(SinkError):
        DashboardSink(DashboardConfig(enabled=True, port=0, token_file=str(tmp_path / "token")))


def test_check_config_refuses_a_short_token_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[http]\nenabled = true\nhost = "0.0.0.0"\ntoken = " "\n')
    proc = run_python("-m", "edge", "run", "--check-config", "--config", str(config), "--model",
                      str(REPO / "models" / "fruit"), "--source", "synthetic", timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[-1].startswith("edge: error:") and f"fewer than {MIN_TOKEN}" in lines[-1], proc.stderr
