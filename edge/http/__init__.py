"""The browser view's HTTP server: limits (server), who may ask (gate), the route table (table), frames (hub)."""

from edge.http.config import DashboardConfig, resolve_token
from edge.http.dispatch import App
from edge.http.gate import Gate, default_hosts, is_loopback
from edge.http.hub import FrameHub, Published
from edge.http.server import BoundedHTTPServer

__all__ = [
           "App",
           "BoundedHTTPServer",
           "DashboardConfig",
           "FrameHub",
           "Gate",
           "Published",
           "default_hosts",
           "is_loopback",
           "resolve_token",
]
