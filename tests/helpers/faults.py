"""Fault injection on loopback: a static file server with HTTP Range, and a faulty reverse proxy.

Why our own proxy: the pipeline's network clients (GDAL's /vsicurl for COGs, botocore for
S3, pystac-client for the catalog) each retry differently, and the only honest test is to
put real faults on the wire between them and a real server. The proxy forwards every
request to an upstream (moto_server, `RangeFileServer`, rustac) and, for a configurable
fraction of requests, answers instead with 503, 429, a TCP reset, or forwards after a
delay ("slow").

Which requests fail is a pure function of (seed, method, path, Range, n-th time this exact
request is seen), so a run's fault pattern does not depend on thread scheduling, and a
retry of a failed request is a fresh draw (as it is on a real overloaded server).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import unquote, urlparse

from tests.helpers.servers import http_server

FAULT_KINDS = ("503", "429", "reset", "slow")
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
}


@dataclass
class FaultPlan:
    """How often and how a proxy misbehaves."""

    fraction: float = 0.1
    """Share of requests that get a fault (0..1)."""
    kinds: tuple[str, ...] = FAULT_KINDS
    """Faults drawn from, uniformly: ``503``, ``429``, ``reset`` and ``slow``."""
    seed: int = 0
    """Seed of the deterministic draw."""
    slow_s: float = 1.5
    """Delay of a ``slow`` answer before it is forwarded."""

    def draw(self, key: str, nth: int) -> str | None:
        """The fault for the n-th sighting of a request, or None to forward it untouched."""
        digest = hashlib.sha256(f"{self.seed}|{key}|{nth}".encode()).digest()
        u, k = struct.unpack(">QQ", digest[:16])
        if u / 2**64 >= self.fraction:
            return None
        return self.kinds[k % len(self.kinds)]


@dataclass
class FaultLog:
    """What a proxy did: requests seen and faults injected, by kind (thread-safe)."""

    requests: int = 0
    faults: Counter = field(default_factory=Counter)
    seen: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_sighting(self, key: str) -> int:
        with self.lock:
            self.requests += 1
            self.seen[key] += 1
            return self.seen[key]

    def record(self, kind: str) -> None:
        with self.lock:
            self.faults[kind] += 1


def _proxy_handler(upstream: str, plan: FaultPlan, log: FaultLog):
    target = urlparse(upstream)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet
            pass

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            key = f"{self.command} {self.path} {self.headers.get('Range', '')}"
            fault = plan.draw(key, log.next_sighting(key))
            if fault:
                log.record(fault)
            if fault == "reset":
                # SO_LINGER 0 makes close() send RST: the client sees "connection reset by peer".
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.close_connection = True
                self.connection.close()
                return
            if fault in ("503", "429"):
                payload = b"<Error><Code>SlowDown</Code><Message>injected</Message></Error>"
                self.send_response(int(fault))
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("Retry-After", "0")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)
                return
            if fault == "slow":
                time.sleep(plan.slow_s)
            self._forward(body)

        def _forward(self, body: bytes | None) -> None:
            conn = http.client.HTTPConnection(target.hostname, target.port, timeout=120)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
            finally:
                conn.close()
            self.send_response(resp.status, resp.reason)
            for k, v in resp.getheaders():
                if k.lower() not in _HOP_BY_HOP and k.lower() != "content-length":
                    self.send_header(k, v)
            # A HEAD answer has no body but must keep the upstream's length (the file size).
            length = resp.getheader("Content-Length") if self.command == "HEAD" else None
            self.send_header("Content-Length", length or str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = _handle

    return Handler


@contextlib.contextmanager
def fault_proxy(upstream: str, plan: FaultPlan) -> Iterator[tuple[str, FaultLog]]:
    """A reverse proxy to `upstream` on a free loopback port; yields (its URL, its log)."""
    log = FaultLog()
    with http_server(_proxy_handler(upstream, plan, log)) as url:
        yield url, log


def _file_handler(root: Path):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def _file(self) -> Path | None:
            rel = unquote(urlparse(self.path).path).lstrip("/")
            path = (root / rel).resolve()
            if root not in path.parents or not path.is_file():
                return None
            return path

        def _send(self, status: int, data: bytes, size: int | None, extra: dict) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Accept-Ranges", "bytes")
            for k, v in extra.items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def do_HEAD(self) -> None:
            path = self._file()
            if path is None:
                self._send(404, b"", None, {})
                return
            size = path.stat().st_size
            self.send_response(200)
            self.send_header("Content-Length", str(size))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()

        def do_GET(self) -> None:
            path = self._file()
            if path is None:
                self._send(404, b"not found", None, {})
                return
            size = path.stat().st_size
            spec = self.headers.get("Range")
            if not spec:
                self._send(200, path.read_bytes(), size, {})
                return
            first, _, last = spec.removeprefix("bytes=").partition("-")
            start = int(first)
            end = min(int(last) if last else size - 1, size - 1)
            if start >= size:
                self._send(416, b"", size, {"Content-Range": f"bytes */{size}"})
                return
            with path.open("rb") as f:
                f.seek(start)
                data = f.read(end - start + 1)
            self._send(206, data, size, {"Content-Range": f"bytes {start}-{end}/{size}"})

    return Handler


@contextlib.contextmanager
def range_file_server(root: str | os.PathLike) -> Iterator[str]:
    """Serve a folder over HTTP with Range requests (what GDAL's /vsicurl needs); yields the URL."""
    with http_server(_file_handler(Path(root).resolve())) as url:
        yield url
