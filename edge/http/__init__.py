"""The browser view's HTTP server: limits (server), who may ask (gate), fixed routes (app, routes), frames (hub)."""

from edge.http import dashboard as _dashboard  # noqa: F401  (registers the dashboard routes on App)
from edge.http import routes as _routes  # noqa: F401  (registers the routes on App)
from edge.http.app import App
from edge.http.config import MjpegConfig, resolve_token
from edge.http.gate import Gate, default_hosts, is_loopback
from edge.http.hub import FrameHub, Published
from edge.http.server import BoundedHTTPServer

__all__ = ["App", "BoundedHTTPServer", "FrameHub", "Gate", "MjpegConfig", "Published", "default_hosts",
           "is_loopback", "resolve_token"]
