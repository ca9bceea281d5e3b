"""The browser view's gate, in process: Host allow-list, cross-origin refusal, token forms and the session cookie,
HEAD, token_file, and that no log line ever holds the token."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from http_client import ask

from edge.http.sink import DashboardConfig, DashboardSink
from edge.records import SinkError
from edge.service.config import ConfigError, load_config

TOKEN = "Zm9v+YmFy/&x#y%z="  # what `openssl rand -base64` and a careless owner produce: + / = & # %


@pytest.fixture
def sink(request: pytest.FixtureRequest) -> Iterator[DashboardSink]:
    config = getattr(request, "param", {"token": TOKEN})
    view = DashboardSink(DashboardConfig(enabled=True, port=0, **config))
    view.open()
    view.hub.publish(b"\xff\xd8 a jpeg", {"label": "Apfel", "frame": 1})
    try:
        yield view
    finally:
        view.close()


def test_host_allow_list_against_dns_rebinding(sink: DashboardSink) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for host in ("127.0.0.1", f"127.0.0.1:{sink.port}", f"localhost:{sink.port}", "[::1]:8080", "LOCALHOST"):
        assert ask(sink.port, "/prediction.json", headers=auth, host=host).status == 200, host
    for host in ("evil.example", f"rebind.attacker.test:{sink.port}", "localhost.evil.example", ""):
        assert ask(sink.port, "/prediction.json", headers=auth, host=host).status == 403, host
    assert ask(sink.port, "/prediction.json", headers=auth, host=None).status == 403


@pytest.mark.parametrize("sink", [{"allowed_hosts": "cam.lan, Pi-Kitchen.local"}], indirect=True)
def test_configured_host_names(sink: DashboardSink) -> None:
    assert ask(sink.port, "/prediction.json", host="cam.lan:8080").status == 200
    assert ask(sink.port, "/prediction.json", host="pi-kitchen.local").status == 200
    assert ask(sink.port, "/prediction.json", host="cam.lan.evil.example").status == 403


@pytest.mark.parametrize("path", ["/prediction.json", "/stream.mjpg", "/frame.jpg", "/"])
def test_cross_origin_reads_refused(sink: DashboardSink, path: str) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for headers in ({"Origin": "http://evil.example"}, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"},
                    {"Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "cors"}):
        assert ask(sink.port, path, method="HEAD", headers=auth | headers).status == 403, headers
    same = {"Origin": f"http://127.0.0.1:{sink.port}", "Sec-Fetch-Site": "same-origin"}
    assert ask(sink.port, path, method="HEAD", headers=auth | same, host=f"127.0.0.1:{sink.port}").status == 200


def test_a_link_from_another_site_may_open_the_page_but_not_the_data(sink: DashboardSink) -> None:
    navigate = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document",
                "Authorization": f"Bearer {TOKEN}"}
    assert ask(sink.port, "/", headers=navigate).status == 200
    assert ask(sink.port, "/prediction.json", headers=navigate).status == 403


def test_bearer_scheme_is_case_insensitive_and_head_works(sink: DashboardSink) -> None:
    for scheme in ("Bearer", "bearer", "BEARER", "bEaReR"):
        answer = ask(sink.port, "/prediction.json", headers={"Authorization": f"{scheme} {TOKEN}"})
        assert answer.status == 200 and b"Apfel" in answer.body, scheme
    assert ask(sink.port, "/prediction.json", headers={"Authorization": "Basic " + TOKEN}).status == 401
    assert ask(sink.port, "/prediction.json", headers={"Authorization": "Bearer wrong"}).status == 401
    for path in ("/", "/prediction.json", "/frame.jpg", "/stream.mjpg"):
        head = ask(sink.port, path, method="HEAD", headers={"Authorization": f"Bearer {TOKEN}"})
        assert head.status == 200 and head.body == b"", path
        assert head.headers["x-content-type-options"] == "nosniff"
    assert ask(sink.port, "/", method="DELETE").status == 405


def test_token_in_the_query_percent_encoded_or_raw_then_a_cookie(sink: DashboardSink) -> None:
    assert ask(sink.port, "/prediction.json").status == 401
    encoded = quote(TOKEN, safe="")
    assert ask(sink.port, f"/prediction.json?token={encoded}").status == 200
    assert ask(sink.port, "/prediction.json?token=" + TOKEN.replace("&", "%26").replace("#", "%23")).status == 200
    first = ask(sink.port, f"/?token={encoded}")
    assert first.status == 303 and first.headers["location"] == "/"  # the token leaves the address bar
    cookie = first.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and TOKEN not in cookie and encoded not in cookie
    session = cookie.split(";")[0]
    page = ask(sink.port, "/", headers={"Cookie": session})
    assert page.status == 200 and TOKEN.encode() not in page.body and encoded.encode() not in page.body
    assert b"token" not in page.body  # the page's own URLs carry no token at all
    assert ask(sink.port, "/prediction.json", headers={"Cookie": session}).status == 200
    forged = session[:-1] + ("1" if session.endswith("0") else "0")
    assert ask(sink.port, "/prediction.json", headers={"Cookie": forged}).status == 401


def test_the_token_is_never_logged(sink: DashboardSink, caplog: pytest.LogCaptureFixture,
                                   capfd: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)
    encoded = quote(TOKEN, safe="")
    ask(sink.port, f"/prediction.json?token={encoded}")
    ask(sink.port, f"/nowhere?a=1&token={encoded}")
    ask(sink.port, "/prediction.json?token=wrong-guess")
    ask(sink.port, "/prediction.json", headers={"Authorization": f"bearer {TOKEN}"})
    ask(sink.port, f"/?token={encoded}", method="BREW")
    text = caplog.text + "".join(capfd.readouterr())
    assert "/prediction.json" in caplog.text  # the requests were logged ...
    for secret in (TOKEN, encoded, "wrong-guess", TOKEN[:6]):
        assert secret not in text, secret  # ... without the token


def test_token_file(tmp_path: Path) -> None:
    path = tmp_path / "http-token"
    path.write_text(TOKEN + "\n")
    path.chmod(0o640)
    view = DashboardSink(DashboardConfig(enabled=True, port=0, token_file=str(path), host="0.0.0.0"))
    view.open()
    try:
        assert ask(view.port, "/prediction.json").status == 401
        assert ask(view.port, "/prediction.json", headers={"Authorization": f"Bearer {TOKEN}"}).status == 200
    finally:
        view.close()
    with pytest.raises(SinkError, match=r"^\[http\] token_file .*missing: cannot read it \(No such file"):
        DashboardSink(DashboardConfig(token_file=str(tmp_path / "missing")))
    with pytest.raises(SinkError, match=r"token and token_file are both set"):
        DashboardSink(DashboardConfig(token="x", token_file=str(path)))
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(SinkError, match=r"first line is empty"):
        DashboardSink(DashboardConfig(token_file=str(tmp_path / "empty")))
    config = tmp_path / "edge.toml"
    config.write_text(f'[http]\ntoken_file = "{path}"\nhost = "0.0.0.0"\nallowed_hosts = "cam.lan"\n')
    assert load_config(config).http.token_file == str(path)
    config.write_text("[http]\nmax_head_bytes = 10\n")
    with pytest.raises(ConfigError, match="max_head_bytes"):
        load_config(config)
