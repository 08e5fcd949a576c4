"""A real STAC API over a local archive: `rustac serve` on a free loopback port.

The pipeline only ever talks to catalogs through pystac-client, so the sample archive is
served by a genuine STAC API server (rustac's in-memory backend) rather than read from
disk behind the pipeline's back. The server process is always reaped: on context exit,
on error, and at interpreter exit.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from geoproc.errors import CatalogError, UsageError

_LIVE: set[subprocess.Popen] = set()


def _rustac_executable() -> str:
    candidate = Path(sys.executable).with_name("rustac")
    if candidate.exists():
        return str(candidate)
    found = shutil.which("rustac")
    if not found:
        raise CatalogError(
            "The `rustac` command was not found: install geoproc with its dependencies "
            "(`make install`), which provides the STAC API server."
        )
    return found


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _absolutise_assets(item: dict, item_path: Path, asset_base_url: str | None) -> dict:
    """Rewrite relative asset hrefs against the item file (or an HTTP base URL)."""
    archive_root = item_path.parents[2]
    for asset in item.get("assets", {}).values():
        href = asset.get("href", "")
        if "://" in href or href.startswith("/"):
            continue
        absolute = (item_path.parent / href).resolve()
        if asset_base_url:
            rel = absolute.relative_to(archive_root.resolve()).as_posix()
            asset["href"] = f"{asset_base_url.rstrip('/')}/{rel}"
        else:
            asset["href"] = str(absolute)
    item["links"] = [
        link
        for link in item.get("links", [])
        if link.get("rel") not in ("self", "parent", "root", "collection")
    ]
    return item


def prepare_served_files(
    archive_dir: Path, work_dir: Path, *, asset_base_url: str | None = None
) -> list[Path]:
    """Write the collections and one item collection with absolute hrefs; return the files to load."""
    archive_dir = Path(archive_dir)
    items_dir = archive_dir / "items"
    if not items_dir.is_dir():
        raise UsageError(
            f"{archive_dir} is not a geoproc archive (no items/ folder): pass the folder made by "
            "`geoproc sample create --out DIR`."
        )
    files: list[Path] = []
    for coll_path in sorted((archive_dir / "collections").glob("*.json")):
        coll = json.loads(coll_path.read_text())
        coll["links"] = [
            link
            for link in coll.get("links", [])
            if link.get("rel") not in ("item", "child", "self", "root", "parent")
        ]
        out = work_dir / f"collection-{coll['id']}.json"
        out.write_text(json.dumps(coll))
        files.append(out)
    features = [
        _absolutise_assets(json.loads(p.read_text()), p, asset_base_url)
        for p in sorted(items_dir.glob("*/*.json"))
    ]
    if not features:
        raise UsageError(
            f"{items_dir} holds no STAC items: regenerate the archive with `geoproc sample create`."
        )
    out = work_dir / "items.json"
    out.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    files.append(out)
    return files


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float, log) -> None:
    deadline = time.monotonic() + timeout
    last_error = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            said = log.read()[-500:].decode(errors="replace").strip()
            raise CatalogError(
                f"The local STAC API server exited at start (code {proc.returncode})"
                + (f": {said}" if said else ".")
            )
        try:
            with urllib.request.urlopen(f"{url}/collections", timeout=2) as resp:
                if resp.status == 200:
                    json.loads(resp.read())
                    return
        except (urllib.error.URLError, ConnectionError, OSError, ValueError) as exc:
            last_error = str(exc)
        time.sleep(0.1)
    raise CatalogError(
        f"The local STAC API server at {url} did not become healthy in {timeout:.0f} s ({last_error})."
    )


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
    _LIVE.discard(proc)


@atexit.register
def _reap_all() -> None:
    for proc in list(_LIVE):
        _stop(proc)


@contextlib.contextmanager
def serve_files(
    files: list[Path], *, port: int | None = None, timeout: float = 30.0
) -> Iterator[str]:
    """Run `rustac serve` over STAC JSON files; yield the API root URL."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [
        _rustac_executable(),
        "serve",
        "--addr",
        f"127.0.0.1:{port}",
        "--create-collections",
        *map(str, files),
    ]
    # rustac's log goes to an unnamed temp file, not a pipe: a pipe nobody reads fills up and
    # blocks a long-running server.
    with tempfile.TemporaryFile() as log:
        proc = None
        try:
            proc = subprocess.Popen(
                cmd, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True
            )
            _LIVE.add(proc)
            _wait_healthy(url, proc, timeout, log)
            yield url
        finally:
            if proc is not None:
                _stop(proc)


@contextlib.contextmanager
def serve_archive(
    archive_dir: str | os.PathLike, *, port: int | None = None, asset_base_url: str | None = None
) -> Iterator[str]:
    """Serve an archive made by `geoproc sample create` (or any folder of the same layout).

    Yields the STAC API root URL, e.g. ``http://127.0.0.1:40123``.
    """
    with tempfile.TemporaryDirectory(prefix="geoproc-stac-") as tmp:
        files = prepare_served_files(Path(archive_dir), Path(tmp), asset_base_url=asset_base_url)
        with serve_files(files, port=port) as url:
            yield url
