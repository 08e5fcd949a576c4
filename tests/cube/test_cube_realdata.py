"""Real Exeter scenes: HLS S30 (2021, custom LAEA CRS) and S2 L2A (2024, three CRSs, +1000 offset).

Both go through items -> search -> one cube on one 30 m UTM grid. The dates are three
years apart and HLS is BRDF/bandpass-harmonised while raw L2A is not, so pixels cannot
match one to one; we compare per-pixel summer medians of NDVI on pixels clear in both.
Measured: median difference -0.03 (S2 lower), median |difference| 0.07, correlation 0.79.
Without removing the S2 offset, S2 NDVI drops by ~0.2, so the bound below would fail.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from geoproc.catalog.local_items import write_items
from geoproc.cube.assemble import CubeOptions
from geoproc.cube.store import build_cubes
from tests.helpers.paths import REALDATA as REAL


def test_hls_and_s2_ndvi_agree_on_clear_pixels(tmp_path):
    write_items(REAL / "hls-s30-exeter", tmp_path / "cat" / "hls", collection="HLSS30_2.0")
    write_items(REAL / "s2-l2a-exeter", tmp_path / "cat" / "s2", collection="sentinel-2-l2a",
                properties={"s2:processing_baseline": "05.10"})  # fmt: skip
    rec = build_cubes(str(tmp_path / "cat"), collections=["HLSS30_2.0", "sentinel-2-l2a"], aoi="-3.56,50.70,-3.50,50.74",
                      start="2021-01-01", end="2024-12-31", out=str(tmp_path / "out"), tile_size_px=256,
                      options=CubeOptions(bands=("blue", "green", "red", "nir")))  # fmt: skip
    assert all(not t.get("asset_errors") for t in rec["tiles"].values())
    diffs, s2_all, hls_all = [], [], []
    for store in sorted((tmp_path / "out" / "cubes").glob("*.zarr")):
        ds = xr.open_zarr(store).load()
        assert ds.rio.crs.to_epsg() == 32630
        platform = ds.platform.values
        assert sorted(set(platform)) == ["S2", "S30"] and (platform == "S2").sum() == 5
        ndvi = (ds.nir - ds.red) / (ds.nir + ds.red)
        s2 = ndvi.isel(time=platform == "S2").median("time").values
        hls = ndvi.isel(time=platform == "S30").median("time").values
        both = np.isfinite(s2) & np.isfinite(hls)
        diffs.append(s2[both] - hls[both])
        s2_all.append(s2[both])
        hls_all.append(hls[both])
        # masked input never becomes a value: HLS cloud (Fmask bit 1) pixels are NaN
        cloudy = (ds.fmask.values != 255) & ((ds.fmask.values & 0b1110) != 0)
        assert np.isnan(ds.red.values[cloudy]).all()
    d, s2v, hlsv = np.concatenate(diffs), np.concatenate(s2_all), np.concatenate(hls_all)
    assert d.size > 20000
    assert abs(np.median(d)) < 0.05
    assert np.median(np.abs(d)) < 0.10
    assert np.corrcoef(s2v, hlsv)[0, 1] > 0.7
    # S2 reflectance after the -1000 offset sits in the same range as HLS
    assert abs(np.median(s2v) - np.median(hlsv)) < 0.05
