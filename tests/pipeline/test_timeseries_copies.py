"""`--timeseries-copy`: a run keeps time-chunked copies of its cube and product stores current."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

from geoproc import pipeline
from geoproc.request import RunRequest
from tests.helpers.paths import REPO_ROOT

pytestmark = pytest.mark.integration

TILE = "32N_0188_1371"


@pytest.fixture(autouse=True)
def _trust_the_local_archive(monkeypatch):
    """The sample archive's items point at local files; its loopback catalog is ours."""
    monkeypatch.setenv("GEOPROC_ALLOW_LOCAL_ASSETS", "true")


def _request(url: str, out, *, end: str, chunk: int = 16) -> RunRequest:
    return RunRequest.create(
        products="lst", aoi=TILE, start="2024-01-01", end=end, catalog=url, out=str(out),
        options={"tile_size_px": 128, "timeseries_time_chunk": chunk},
    )  # fmt: skip


def _raw(url: str, variable: str) -> np.ndarray:
    """The stored numbers (no mask or scale applied), to compare copies bit for bit."""
    return xr.open_zarr(url, mask_and_scale=False, decode_times=False)[variable].values


def test_a_run_creates_then_extends_the_time_chunked_copies(stac_api_small, tmp_path):
    out = tmp_path / "out"
    first = pipeline.run_pipeline(
        _request(stac_api_small, out, end="2024-04-30"), publish_outputs=False
    )
    assert first["timeseries_copies"] == {TILE: {"cubes": "written", "products/lst": "written"}}
    second = pipeline.run_pipeline(
        _request(stac_api_small, out, end="2024-08-31"), publish_outputs=False
    )
    # the cube copy gains the new dates only; the product store's input fingerprint changed
    # (a product store may rewrite old dates), so its copy is made again
    assert second["timeseries_copies"] == {TILE: {"cubes": "appended", "products/lst": "written"}}

    cube = str(out / "cubes" / f"{TILE}.zarr")
    copy = str(out / "timeseries" / "cubes" / f"{TILE}.zarr")
    source = xr.open_zarr(cube)
    complete = source["time_complete"].values.astype(bool)
    copied = xr.open_zarr(copy)
    assert copied.sizes["time"] == int(complete.sum()) > 16  # both runs' dates, in one copy
    assert copied["red"].encoding["chunks"][0] == 16  # time-chunked, unlike the cube's 1
    np.testing.assert_array_equal(_raw(copy, "red"), _raw(cube, "red")[complete])

    product = str(out / "products" / "lst" / f"{TILE}.zarr")
    product_copy = str(out / "timeseries" / "products" / "lst" / f"{TILE}.zarr")
    np.testing.assert_array_equal(_raw(product_copy, "lst"), _raw(product, "lst"))

    third = pipeline.run_pipeline(
        _request(stac_api_small, out, end="2024-08-31"), publish_outputs=False
    )
    assert third["timeseries_copies"] == {
        TILE: {"cubes": "up to date", "products/lst": "up to date"}
    }

    # another chunk length than the copies have: the run's work stands, the copies say why not
    other = pipeline.run_pipeline(
        _request(stac_api_small, out, end="2024-08-31", chunk=8), publish_outputs=False
    )
    assert other["status"] == third["status"]
    for status in other["timeseries_copies"][TILE].values():
        assert status.startswith("failed: --time-chunk 8: ") and "--timeseries-copy" in status


def test_a_bad_timeseries_chunk_is_a_usage_error(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "geoproc", "run", "lst", "--catalog", str(tmp_path), "--aoi", TILE,
         "--start", "2024-01-01", "--end", "2024-02-01", "--out", str(tmp_path / "out"),
         "--timeseries-copy", "weekly"],
        capture_output=True, text=True, cwd=REPO_ROOT,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "--timeseries-copy 'weekly'" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()
