"""Real servers on loopback for integration tests: any HTTP handler, and the moto S3 API server.

`http_server` is the one way tests serve HTTP from a thread (fake STAC APIs, file servers,
credential gates, fault proxies); moto runs as a subprocess on a free port, health-checked.
Both are always stopped.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from geoproc.dev.stac_server import free_port


class _LoopbackServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    """Bursts of parallel range reads (GDAL, dask workers) must queue, not be refused."""


@contextlib.contextmanager
def http_server(handler: type[BaseHTTPRequestHandler] | Callable[..., object]) -> Iterator[str]:
    """Serve `handler` (a handler class, or a callable such as a `functools.partial` of one)
    on 127.0.0.1 at a free port from a daemon thread; yields ``http://127.0.0.1:PORT``.

    On exit the server is shut down and its socket closed, even when the body raised.
    """
    server = _LoopbackServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@contextlib.contextmanager
def moto_s3_server(command: list[str] | None = None) -> Iterator[str]:
    """Run `moto_server` (or `command`, taking moto's arguments) on a free port; yield its URL."""
    port = free_port()
    command = command or [str(Path(sys.executable).with_name("moto_server"))]
    proc = subprocess.Popen(
        [*command, "-p", str(port), "-H", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/moto-api/", timeout=1):
                    break
            except Exception:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)


def s3_client(endpoint: str, kind: str = "client"):
    """A boto3 client (or resource) for the test moto server's fixed credentials."""
    import boto3

    return getattr(boto3, kind)(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )


def create_bucket(endpoint: str, bucket: str) -> None:
    s3_client(endpoint).create_bucket(Bucket=bucket)
