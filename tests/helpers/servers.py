"""Real servers on loopback for integration tests: the moto S3 API server.

Started as a subprocess on a free port, health-checked, always stopped.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from geoproc.dev.stac_server import free_port


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
