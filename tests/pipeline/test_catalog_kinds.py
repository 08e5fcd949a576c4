"""`geoproc run` reads the same three kinds of --catalog as `cube build`.

A folder of item files and a static catalog.json must give the run exactly the time steps
(and item ids) the live STAC API gives for the same archive; a value that is none of the
three kinds is exit 2 naming --catalog, before anything is written.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from geoproc.pipeline import plan, search
from geoproc.request import RunRequest, check_catalog

pytestmark = pytest.mark.integration

WINDOW = {"start": "2024-06-01", "end": "2024-06-30"}


def _request(archive: Path, catalog: str, out: Path) -> RunRequest:
    return RunRequest.create(
        products="lst", aoi=str(archive / "aoi.geojson"), catalog=catalog, out=str(out),
        collections="HLSL30_2.0", options={"tile_size_px": 128}, **WINDOW,
    )  # fmt: skip


def _steps(request: RunRequest) -> dict[str, list[tuple[str, list[str]]]]:
    result = search(request, plan(request))
    return {
        tile: [(str(s.time), sorted(i.id for i in s.items)) for s in t.steps]
        for tile, t in result.tiles.items()
    }


def _static_catalog(archive: Path, folder: Path) -> Path:
    """A self-contained catalog.json linking every L30 item file of the archive."""
    folder.mkdir()
    items = sorted((archive / "items" / "HLSL30_2.0").glob("*.json"))
    links = [{"rel": "item", "href": str(p), "type": "application/json"} for p in items]
    root = {"type": "Catalog", "stac_version": "1.0.0", "id": "t", "description": "t"}
    (folder / "catalog.json").write_text(json.dumps(root | {"links": links}))
    return folder / "catalog.json"


def test_folder_and_static_catalog_give_the_api_steps(
    sample_archive_small, stac_api_small, tmp_path
):
    folder = str(sample_archive_small / "items")
    static = str(_static_catalog(sample_archive_small, tmp_path / "static"))
    assert check_catalog(folder) == {} and check_catalog(static) == {}  # no landing page
    by_api = _steps(_request(sample_archive_small, stac_api_small, tmp_path / "a"))
    by_folder = _steps(_request(sample_archive_small, folder, tmp_path / "f"))
    by_static = _steps(_request(sample_archive_small, static, tmp_path / "s"))
    assert sum(len(s) for s in by_api.values()) >= 3  # June has L30 scenes on every tile
    assert by_folder == by_api and by_static == by_api


@pytest.mark.slow  # ~35 s on the loaded 2-core machine (cube + LST on three 128 px tiles)
def test_cli_run_lst_on_a_folder_of_items(sample_archive_small, tmp_path):
    import xarray as xr

    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "geoproc", "run", "lst", "--catalog", str(sample_archive_small / "items"),
         "--aoi", str(sample_archive_small / "aoi.geojson"), "--start", WINDOW["start"], "--end",
         WINDOW["end"], "--collections", "HLSL30_2.0", "--tile-size", "128", "--no-publish", "-q",
         "--out", str(out)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout[proc.stdout.index("{") :])
    report = json.loads(Path(summary["report_url"]).read_text())
    assert report["request"]["catalog"] == str(sample_archive_small / "items")
    assert len(report["products"]) == 3 and report["search"]["steps_per_tile"]
    lst = xr.open_zarr(next((out / "products" / "lst").glob("*.zarr")))["lst"].values
    assert 0.2 < np.isfinite(lst).mean() and 285 < np.nanmedian(lst) < 310  # 298.1 K measured


@pytest.mark.parametrize(
    "catalog, needle",
    [("no/such/folder", "neither an http(s)"), ("s3://bucket/stac/", "not a .json file")],
)
@pytest.mark.parametrize("command", ["run", "backfill"])
def test_cli_bad_catalog_exit_2_nothing_written(tmp_path, command, catalog, needle):
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "geoproc", command, "lst", "--catalog", catalog, "--aoi",
         "11.9,47.4,12.1,47.6", "--start", "2024-06-01", "--end", "2024-06-30", "--out", str(out)],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "--catalog" in proc.stderr and needle in proc.stderr
    assert "Traceback" not in proc.stderr and not out.exists()
