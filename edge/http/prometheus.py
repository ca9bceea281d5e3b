"""/metrics: the service's figures in Prometheus' text format, behind the same gate as the page (a scraper sends the
token as `Authorization: Bearer`; Prometheus' `authorization: {credentials_file: ...}` does)."""

from __future__ import annotations

from http import HTTPStatus
from urllib.parse import SplitResult

from edge.http.dispatch import App
from edge.http.handler import Handler

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # the text exposition format's own media type


def metrics(app: App, h: Handler, url: SplitResult) -> None:
    if app.board.metrics is None:
        h.fail(HTTPStatus.NOT_FOUND, "no metrics in this run")
        return
    h.send_body(CONTENT_TYPE, app.board.metrics().encode())
