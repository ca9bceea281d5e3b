"""[http]: the browser view's settings, and where its access token comes from."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from edge.http.gate import MIN_TOKEN
from edge.records import SinkError
from edge.safe_io import read_regular

_LOGGER = logging.getLogger(__name__)

MAX_SECRET_FILE = 4096  # bytes of a token file read at most


@dataclass(frozen=True)
class DashboardConfig:
    """[http]: the browser view."""

    enabled: bool = field(default=False, metadata={"doc": "serve the browser view"})
    host: str = field(default="127.0.0.1", metadata={"doc": "address to listen on; non-loopback needs a token"})
    port: int = field(default=8080, metadata={"range": (0, 65535), "doc": "TCP port; 0 = any free port"})
    token: str = field(default="", metadata={"doc": "access token; prefer token_file"})
    token_file: str = field(default="", metadata={"doc": "file whose first line is the access token (chmod 640)"})
    allowed_hosts: str = field(default="", metadata={
        "doc": "extra Host names the view is reached as, comma-separated (IP addresses, localhost and this "
               "machine's name are always allowed)"})
    controls: bool = field(default=True, metadata={"doc": "live controls on the page; false = a read-only page"})
    events: int = field(default=24, metadata={"range": (0, 500),
                                              "doc": "recent events shown (in memory; read back from [log] dir)"})
    max_clients: int = field(default=4, metadata={"range": (1, 64), "doc": "simultaneous streams"})
    max_connections: int = field(default=32, metadata={
        "range": (2, 1024), "doc": "open connections in all; more are refused at once"})
    head_timeout_s: float = field(default=5.0, metadata={
        "range": (0.2, 120.0), "doc": "a request must send its whole head within this"})
    max_head_bytes: int = field(default=8192, metadata={
        "range": (1024, 65536), "doc": "largest request line + headers; more gets 431"})
    jpeg_quality: int = field(default=80, metadata={"range": (10, 100), "doc": "JPEG quality of the stream"})
    client_timeout_s: float = field(default=10.0, metadata={"range": (0.5, 600.0), "doc": "drop stalled clients"})


def resolve_token(config: DashboardConfig) -> str:
    """The access token: [http] token, or the first line of [http] token_file (not both)."""
    if config.token and config.token_file:
        raise SinkError("[http] token and token_file are both set: keep one (token_file keeps it out of the config)")
    token = _read_token(config) if config.token_file else config.token
    if token and len(token.strip()) < MIN_TOKEN:
        where = f"token_file {config.token_file}" if config.token_file else "token"
        raise SinkError(f"[http] {where}: the token has {len(token)} characters, fewer than {MIN_TOKEN}; make one "
                        "with `head -c 24 /dev/urandom | base64` (systemd/install.sh makes 32)")
    return token


def _read_token(config: DashboardConfig) -> str:
    """The first line of token_file, read only if it is a small regular file (not a FIFO, a device, a huge file)."""
    try:
        lines = read_regular(config.token_file, MAX_SECRET_FILE).decode("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise SinkError(f"[http] token_file {config.token_file}: cannot read it ({reason})") from e
    token = lines[0].strip() if lines else ""
    if not token:
        raise SinkError(f"[http] token_file {config.token_file}: the first line is empty")
    if Path(config.token_file).stat().st_mode & 0o004:
        _LOGGER.warning("[http] token_file %s is readable by every user: chmod 640 it", config.token_file)
    return token
