"""A raw HTTP/1.1 client for the browser-view tests: every header as given (Host included), nothing added."""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass


@dataclass
class Answer:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes


def ask(port: int, path: str = "/", method: str = "GET", headers: dict[str, str] | None = None,
        body: bytes = b"", host: str | None = "127.0.0.1") -> Answer:
    """Send one request to 127.0.0.1:port and read the whole answer (the server closes after each)."""
    lines = [f"{method} {path} HTTP/1.1"]
    if host is not None:
        lines.append(f"Host: {host}")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    found: dict[str, str] = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        found[name.strip().lower()] = value.strip()
    return Answer(int(status_line.split()[1]), found, rest)


def reset(s: socket.socket) -> None:
    """Close with an RST instead of a FIN, as a crashed or impatient client does."""
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
