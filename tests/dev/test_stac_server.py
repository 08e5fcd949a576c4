"""The local STAC API: a real rustac server, searched only through pystac-client."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
import shapely.geometry
from pystac_client import Client

from geoproc.dev.stac_server import serve_archive
from geoproc.errors import UsageError


def _mini_archive(root: Path, realdata: Path) -> Path:
    """An archive of the two real Sentinel-1 RTC items (assets stay remote; only metadata is served)."""
    (root / "items" / "sentinel-1-rtc").mkdir(parents=True)
    (root / "collections").mkdir()
    for name in (
        "stactools-s1__S1A_20200103_17RMJ_ASC.json",
        "stactools-s1__S1B_20161121_12SYJ_ASC.json",
    ):
        item = json.loads((realdata / "stac-items" / name).read_text())
        item["collection"] = "sentinel-1-rtc"
        (root / "items" / "sentinel-1-rtc" / f"{item['id']}.json").write_text(json.dumps(item))
    return root


def test_search_real_items_by_bbox_and_time(tmp_path, realdata):
    archive = _mini_archive(tmp_path / "a", realdata)
    with serve_archive(archive) as url:
        client = Client.open(url)
        everything = {i.id for i in client.search(collections=["sentinel-1-rtc"]).items()}
        assert everything == {"S1A_20200103_17RMJ_ASC", "S1B_20161121_12SYJ_ASC"}
        florida = client.search(bbox=[-81.9, 25.4, -81.7, 25.6], datetime="2020-01-01/2020-01-31")
        assert [i.id for i in florida.items()] == ["S1A_20200103_17RMJ_ASC"]
        assert (
            list(
                client.search(
                    bbox=[-81.9, 25.4, -81.7, 25.6], datetime="2019-01-01/2019-12-31"
                ).items()
            )
            == []
        )


def test_server_process_is_reaped(tmp_path, realdata):
    archive = _mini_archive(tmp_path / "a", realdata)
    with serve_archive(archive) as url:
        port = url.rsplit(":", 1)[1]
    out = subprocess.run(
        ["pgrep", "-f", f"rustac serve --addr 127.0.0.1:{port}"], capture_output=True
    )
    assert out.stdout.strip() == b""


def test_not_an_archive_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="geoproc sample create"):
        with serve_archive(tmp_path):
            pass


def test_cli_serve_bad_folder_exits_2(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "geoproc",
            "stac",
            "serve",
            str(tmp_path / "missing"),
            "--duration",
            "0",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "sample create" in proc.stderr


@pytest.mark.integration
def test_search_returns_exactly_the_generated_items(sample_archive_small, stac_api_small):
    """A bbox + date search against the API returns exactly the items the generator wrote there."""
    aoi = json.loads((sample_archive_small / "aoi.geojson").read_text())["features"][0]["geometry"]
    west, south, east, north = shapely.geometry.shape(aoi).bounds
    bbox = [west, south, (west + east) / 2, north]
    start, end = datetime(2024, 5, 1), datetime(2024, 6, 30, 23, 59, 59)
    expected = set()
    for path in (sample_archive_small / "items").glob("*/*.json"):
        item = json.loads(path.read_text())
        when = datetime.fromisoformat(
            item["properties"]["datetime"].replace("Z", "+00:00")
        ).replace(tzinfo=None)
        if start <= when <= end and shapely.geometry.shape(item["geometry"]).intersects(
            shapely.geometry.box(*bbox)
        ):
            expected.add(item["id"])
    assert len(expected) > 10
    found = [
        i.id
        for i in Client.open(stac_api_small)
        .search(bbox=bbox, datetime="2024-05-01/2024-06-30", limit=7)
        .items()
    ]
    assert len(found) == len(set(found))
    assert set(found) == expected


def test_rustac_on_path():
    assert shutil.which("rustac") or Path(sys.executable).with_name("rustac").exists()


def _sigint_ignored() -> None:
    """What a non-interactive shell does to a job started with `&`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize(
    "sig, code, preexec",
    [
        (signal.SIGTERM, 143, None),
        (signal.SIGINT, 130, None),
        (signal.SIGINT, 130, _sigint_ignored),
    ],
    ids=["SIGTERM", "SIGINT", "SIGINT-inherited-ignored"],
)
def test_stac_serve_process_stops_its_child_and_removes_temp_files(
    tmp_path, realdata, sig, code, preexec
):
    """A real `geoproc stac serve` process, stopped by a signal: no rustac left, no temp folder.

    The third case starts it as `cmd &` in a script would (SIGINT ignored on entry): the
    server still stops on SIGINT, its documented way to stop."""
    import os

    import psutil

    archive = _mini_archive(tmp_path / "a", realdata)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "geoproc", "stac", "serve", str(archive)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "TMPDIR": str(tmp)}, preexec_fn=preexec,
    )  # fmt: skip
    rustac: list = []
    try:
        line = proc.stdout.readline()
        assert "STAC API serving" in line, (line, proc.stderr.read() if proc.poll() else "")
        children = psutil.Process(proc.pid).children(recursive=True)
        rustac = [c for c in children if "rustac" in " ".join(c.cmdline())]
        assert len(rustac) == 1
        assert [p.name for p in tmp.iterdir()][0].startswith("geoproc-stac-")
        proc.send_signal(sig)
        assert proc.wait(timeout=30) == code
    finally:
        if proc.poll() is None:
            proc.kill()
            for child in rustac:  # a failed run must not leak a server into the next test
                child.kill()
    assert not rustac[0].is_running() or rustac[0].status() == psutil.STATUS_ZOMBIE
    assert list(tmp.iterdir()) == []
    assert "Traceback" not in proc.stderr.read()
