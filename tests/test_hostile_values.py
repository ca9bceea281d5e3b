"""Config and CLI values an attacker or a slip of the hand can give: each is one `edge: error:` line and exit 2 from
`edge run --check-config`, never a traceback or a hang; --check-config prints no secret; install.sh checks in a
private temporary folder."""

from __future__ import annotations

import io
import os
import threading
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from conftest import REPO

from edge.service.cli import main

MODEL = str(REPO / "models" / "fruit")
LONG = "a" * 70_000  # over MQTT's 65,535-byte strings
GOOD_TOKEN = "k" * 32


def _main(argv: list[str]) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of the CLI's main in process; fails the test on a hang."""
    out, err, status = io.StringIO(), io.StringIO(), []

    def call() -> None:
        with redirect_stdout(out), redirect_stderr(err):
            status.append(main(argv))

    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    worker.join(30)
    assert not worker.is_alive(), f"hung: {argv}"
    return status[0], out.getvalue(), err.getvalue()


def _check(tmp_path: Path, config: str, *args: str) -> tuple[int, str, str]:
    """edge run --check-config with config as its TOML."""
    path = tmp_path / "config.toml"
    path.write_text(config, encoding="utf-8")
    return _main(["run", "--check-config", "--config", str(path), "--model", MODEL, "--source", "synthetic", *args])


@pytest.fixture
def fifo(tmp_path: Path) -> str:
    path = tmp_path / "fifo"
    os.mkfifo(path)
    return str(path)


CASES = {
    "NUL in token_file": ('[http]\nenabled = true\ntoken_file = "a\\u0000b"\n', (), "NUL"),
    "NUL in the log dir": ('[log]\ndir = "/tmp/a\\u0000b"\n', (), "NUL"),
    "NUL in password_file": ('[mqtt]\nurl = "mqtt://u@localhost"\npassword_file = "\\u0000"\n', (), "NUL"),
    "NUL in ca_file": ('[mqtt]\nurl = "mqtts://localhost"\nca_file = "x\\u0000"\n', (), "NUL"),
    "token_file /dev/zero": ('[http]\nenabled = true\ntoken_file = "/dev/zero"\n', (), "not a regular file"),
    "password_file /dev/zero": ('[mqtt]\nurl = "mqtt://u@localhost"\npassword_file = "/dev/zero"\n', (),
                                "not a regular file"),
    "--size with superscripts": ("", ("--size", "\u00b2x\u00b2"), "--size"),
    "client_id over 65,535 bytes": (f'[mqtt]\nurl = "mqtt://localhost"\nclient_id = "{LONG}"\n', (), "client_id"),
    "prefix over 65,535 bytes": (f'[mqtt]\nurl = "mqtt://localhost"\nprefix = "{LONG}"\n', (), "prefix"),
    "a short token": ('[http]\nenabled = true\ntoken = " "\nhost = "0.0.0.0"\n', (), "fewer than 16"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_bad_value_is_one_line_and_exit_2(tmp_path: Path, case: str) -> None:
    config, args, expected = CASES[case]
    status, _, err = _check(tmp_path, config, *args)
    last = err.strip().splitlines()[-1]
    assert status == 2 and last.startswith("edge: error:") and expected in last, err[-1500:]
    assert "Traceback" not in err


@pytest.mark.parametrize("where", ["token_file", "--config", "video:"])
def test_a_fifo_is_refused_not_waited_on(tmp_path: Path, fifo: str, where: str) -> None:
    if where == "--config":
        status, _, err = _main(["run", "--check-config", "--config", fifo, "--model", MODEL])
    else:
        config = f'[http]\nenabled = true\ntoken_file = "{fifo}"\n' if where == "token_file" else ""
        args = ("--source", f"video:{fifo}") if where == "video:" else ()
        status, _, err = _check(tmp_path, config, *args)
    last = err.strip().splitlines()[-1]
    assert status == 2 and last.startswith("edge: error:"), err[-1500:]


def test_garbage_ca_file_fails_check_config_as_it_fails_run(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not a certificate\n")
    status, _, err = _check(tmp_path, f'[mqtt]\nurl = "mqtts://localhost"\nca_file = "{ca}"\n')
    assert status == 2 and "ca_file" in err.strip().splitlines()[-1], err[-1500:]


def test_check_config_prints_no_secret(tmp_path: Path) -> None:
    status, out, err = _check(tmp_path, f'[http]\nenabled = true\ntoken = "{GOOD_TOKEN}"\n')
    assert status == 0, err[-1500:]
    assert GOOD_TOKEN not in out + err and '"token": "***"' in out


def test_deep_json_control_body_is_a_400(tmp_path: Path) -> None:
    from http_client import ask
    from test_dashboard_api import _live

    from edge.http.sink import DashboardConfig, DashboardSink

    view = DashboardSink(DashboardConfig(enabled=True, port=0, token=GOOD_TOKEN), live=_live())
    view.open()
    try:
        answer = ask(view.port, "/api/controls", "POST", {"Authorization": f"Bearer {GOOD_TOKEN}",
                                                           "Content-Type": "application/json"}, b"[" * 2000)
        assert answer.status == 400 and b"nested too deeply" in answer.body
    finally:
        view.close()


def test_install_checks_in_a_private_temporary_folder() -> None:
    install = (REPO / "systemd" / "install.sh").read_text()
    assert "mktemp -d" in install and "/tmp/" not in install
