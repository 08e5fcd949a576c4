"""Loopback servers that behave like the public archives' credential gates (no test functions).

* `sas_servers`: a Planetary-Computer-style token endpoint (``GET /{account}/{container}``
  -> ``{"msft:expiry", "token"}``) and a COG server that answers 403 unless the query
  carries a token the endpoint issued and has not revoked;
* `earthdata_servers`: an LP-DAAC-style COG server that answers requests without a valid
  bearer token with a 302 to a login host, which answers 401.

Both serve files from one folder with HEAD and Range support (what GDAL's /vsicurl/ needs).
"""

from __future__ import annotations

import contextlib
import http.server
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

from tests.helpers.servers import http_server


@dataclass
class Gate:
    """Shared state of a fake archive: issued tokens, revoked ones, request log."""

    valid: set[str] = field(default_factory=set)
    issued: list[str] = field(default_factory=list)
    requests: list[tuple[str, int]] = field(default_factory=list)
    accept_tokens: bool = True
    lifetime_s: int = 3600


def _file_handler(root: Path, gate: Gate, allowed):
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _serve(self, body: bool):
            parsed = urlparse(self.path)
            status = allowed(self, parsed)
            if status != 200:
                gate.requests.append((self.path, status))
                return
            path = root / parsed.path.lstrip("/").split("/", 1)[-1]
            if not path.is_file():
                gate.requests.append((self.path, 404))
                self.send_response(404)
                self.end_headers()
                return
            data = path.read_bytes()
            rng = self.headers.get("Range")
            if rng and rng.startswith("bytes="):
                a, _, b = rng[6:].partition("-")
                start, end = int(a), min(int(b) if b else len(data) - 1, len(data) - 1)
                chunk = data[start : end + 1]
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
            else:
                chunk = data
                self.send_response(200)
            gate.requests.append((self.path, 200))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(len(chunk)))
            self.end_headers()
            if body:
                self.wfile.write(chunk)

        def do_GET(self):
            self._serve(True)

        def do_HEAD(self):
            self._serve(False)

    return Handler


@contextlib.contextmanager
def _serve(handler) -> Iterator[str]:
    """`http_server`, yielding ``host:port`` (the form these gates put into URLs)."""
    with http_server(handler) as url:
        yield url.removeprefix("http://")


def _deny(handler, status: int, location: str | None = None) -> int:
    handler.send_response(status)
    if location:
        handler.send_header("Location", location)
    handler.send_header("Content-Length", "0")
    handler.end_headers()
    return status


@contextlib.contextmanager
def sas_servers(root: Path) -> Iterator[tuple[str, str, Gate]]:
    """(token endpoint URL, COG host:port, gate); COG paths are ``/{container}/{file}``."""
    gate = Gate()

    class TokenHandler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            token = f"sv=2021&sig=t{len(gate.issued)}"
            gate.issued.append(token)
            gate.valid.add(token)
            expiry = datetime.now(UTC) + timedelta(seconds=gate.lifetime_s)
            body = json.dumps({"msft:expiry": expiry.isoformat(), "token": token}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def allowed(handler, parsed) -> int:
        query = parsed.query
        if gate.accept_tokens and query in gate.valid:
            return 200
        return _deny(handler, 403)

    with _serve(TokenHandler) as token_host, _serve(_file_handler(root, gate, allowed)) as cog:
        yield f"http://{token_host}/api/sas/v1/token", cog, gate


@contextlib.contextmanager
def earthdata_servers(root: Path, token: str) -> Iterator[tuple[str, Gate]]:
    """(COG host:port, gate): no/incorrect bearer token -> 302 to a login host -> 401."""
    gate = Gate()

    class LoginHandler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            gate.requests.append((self.path, 401))
            _deny(self, 401)

        do_HEAD = do_GET

    with _serve(LoginHandler) as login:

        def allowed(handler, parsed) -> int:
            if handler.headers.get("Authorization") == f"Bearer {token}":
                return 200
            return _deny(handler, 302, f"http://{login}/oauth/authorize?redirect={parsed.path}")

        with _serve(_file_handler(root, gate, allowed)) as cog:
            yield cog, gate
