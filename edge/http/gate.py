"""Who may talk to the browser view: Host allow-list (DNS rebinding), same-origin only, token, session cookie.

The token reaches the server once (as ?token=, percent-encoded, or an `Authorization: Bearer` header); the answer sets
an HttpOnly, SameSite=Strict cookie holding its issue time and an HMAC of it under a key drawn at start (not the
token), valid for SESSION_S and in this process only, and the page never puts the token into its own URLs. Every
comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import re
import socket
import time
from collections.abc import Iterable
from http.cookies import CookieError, SimpleCookie
from typing import Any, Protocol
from urllib.parse import unquote, unquote_plus, urlsplit

SESSION_S = 30 * 86400  # a session cookie's life, checked by the server as well as the browser
MIN_TOKEN = 16  # characters; install-etc.sh makes 32

_TOKEN_IN_TEXT = re.compile(r"(token=)[^&\s\"']*", re.IGNORECASE)
_BEARER_IN_TEXT = re.compile(r"(bearer\s+)\S+", re.IGNORECASE)


class Headers(Protocol):
    """A request's headers (http.client.HTTPMessage, or a dict in tests)."""

    def get(self, name: str, default: Any = None, /) -> Any: ...


def redact(text: str) -> str:
    """text with any ?token=... or Bearer value replaced, for logs."""
    return _BEARER_IN_TEXT.sub(r"\1***", _TOKEN_IN_TEXT.sub(r"\1***", text))


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_name(header: str) -> str:
    """The name in a Host header or an Origin's authority, without port or IPv6 brackets, lower-case."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].partition("]")[0]
    return header.rpartition(":")[0] if header.count(":") == 1 else header


def default_hosts(bound: str) -> set[str]:
    """Names the server answers to without configuration: localhost and this machine's names (IP addresses are
    always accepted: a rebinding attack needs a DNS name)."""
    name = socket.gethostname().lower()
    return {"localhost", name, f"{name}.local", bound.lower()}


class Gate:
    """The checks every request passes before a route runs."""

    def __init__(self, token: str, allowed_hosts: Iterable[str], cookie_name: str) -> None:
        self.token = token
        self.allowed = {h.strip().lower().rstrip(".") for h in allowed_hosts if h.strip()}
        self.cookie_name = cookie_name
        # A secret drawn at each start: a cookie is good for this process only (not after a restart, nor on another
        # device or port sharing the token), and it carries its issue time, so it also expires on the server.
        self._key = hmac.new(os.urandom(32), token.encode("utf-8", "surrogateescape"), hashlib.sha256).digest()
        self.clock = time.time

    def cookie_value(self) -> str:
        """`<issue time>.<HMAC of it under this start's key>`."""
        issued = str(int(self.clock()))
        return f"{issued}.{hmac.new(self._key, issued.encode(), hashlib.sha256).hexdigest()}"

    def host_allowed(self, host_header: str | None) -> bool:
        if not host_header:
            return False
        name = host_name(host_header).rstrip(".")
        try:
            ipaddress.ip_address(name)
            return True
        except ValueError:
            return name in self.allowed

    @staticmethod
    def cross_origin(headers: Headers, *, navigation_ok: bool) -> bool:
        """True for a request another site's page made (Fetch metadata, else Origin against Host); a top-level
        navigation (a link to the page) passes where navigation_ok."""
        site = headers.get("Sec-Fetch-Site", "")
        if navigation_ok and headers.get("Sec-Fetch-Mode", "") == "navigate" and headers.get("Sec-Fetch-Dest",
                                                                                              "document") == "document":
            return False
        if site in ("cross-site", "same-site"):
            return True
        origin = headers.get("Origin")
        if origin is None:
            return False
        parts = urlsplit(origin)
        return origin == "null" or (parts.netloc or "").lower() != (headers.get("Host") or "").lower()

    def check_token(self, headers: Headers, query: str) -> tuple[bool, bool]:
        """(authorised, by a token given in this request rather than the cookie)."""
        if not self.token:
            return True, False
        scheme, _, value = headers.get("Authorization", "").strip().partition(" ")
        if scheme.lower() == "bearer" and _same(value.strip(), self.token):
            return True, True
        if self._query_token_ok(query):
            return True, True
        return self._cookie_ok(headers.get("Cookie", "")), False

    def _query_token_ok(self, query: str) -> bool:
        for part in query.split("&"):
            key, sep, raw = part.partition("=")
            # Percent-encoded is the rule; a raw '+' (as typed from base64) is tried as a plus too.
            if sep and key == "token" and (_same(unquote_plus(raw), self.token) or _same(unquote(raw), self.token)):
                return True
        return False

    def _cookie_ok(self, header: str) -> bool:
        try:
            cookies = SimpleCookie(header)
        except CookieError:
            return False
        morsel = cookies.get(self.cookie_name)
        if morsel is None:
            return False
        issued, _, mac = morsel.value.partition(".")
        if not issued.isdigit() or len(issued) > 12:
            return False
        age = self.clock() - int(issued)
        expected = hmac.new(self._key, issued.encode(), hashlib.sha256).hexdigest()
        return -60 <= age <= SESSION_S and _same(mac, expected)

    def set_cookie(self) -> str:
        return (f"{self.cookie_name}={self.cookie_value()}; Path=/; HttpOnly; SameSite=Strict; "
                f"Max-Age={SESSION_S}")


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode("utf-8", "surrogateescape"))
