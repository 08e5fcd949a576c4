"""The sample archive through a real STAC API (rustac): three collections, two UTM zones."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from geoproc.cube.assemble import _warp_read
from geoproc.cube.store import build_cubes
from geoproc.grid import parse_tile_id


@pytest.mark.integration
def test_sample_archive_cube_masks_the_true_clouds(sample_archive_small, stac_api_small, tmp_path):
    aoi = sample_archive_small / "aoi.geojson"
    size = json.loads(aoi.read_text())["features"][0]["properties"]["tile_size_px"]
    rec = build_cubes(stac_api_small, collections=["HLSL30_2.0", "HLSS30_2.0", "sentinel-1-rtc"], aoi=str(aoi),
                      start="2024-06-01", end="2024-06-30", out=str(tmp_path / "out"), tile_size_px=size)  # fmt: skip
    assert {t[:3] for t in rec["tiles"]} == {"32N", "33N"}
    cloudy_masked, clear_kept = [], []
    for tid in rec["tiles"]:
        assert not rec["tiles"][tid]["asset_errors"]
        ds = xr.open_zarr(tmp_path / "out" / "cubes" / f"{tid}.zarr").load()
        assert set(ds.platform.values) == {"L30", "S30", "S1"} and bool(ds.time_complete.all())
        sar = ds.platform.values == "S1"
        assert ds.vv.isel(time=~sar).isnull().all() and ds.red.isel(time=sar).isnull().all()
        assert ds.atmos_water_vapour.isel(time=ds.platform.values == "L30").notnull().all()
        tile = parse_tile_id(tid, tile_size_px=size)
        for i, ids in enumerate(ds.attrs["geoproc:source_items"]):
            if sar[i]:
                continue
            truth = [
                _warp_read(
                    str(sample_archive_small / "truth" / "clouds" / f"{s}.tif"),
                    1,
                    tile,
                    "nearest",
                    255,
                )[0]
                for s in ids
            ]
            any_clear = np.any([t == 0 for t in truth], axis=0)
            all_cloud = np.all([t != 0 for t in truth], axis=0) & np.any(
                [(t > 0) & (t != 255) for t in truth], axis=0
            )
            red = ds.red.values[i]
            cloudy_masked.append((np.isnan(red[all_cloud]).sum(), all_cloud.sum()))
            clear_kept.append((np.isfinite(red[any_clear]).sum(), any_clear.sum()))
    masked = np.sum(cloudy_masked, axis=0)
    kept = np.sum(clear_kept, axis=0)
    assert masked[1] > 1000 and masked[0] / masked[1] > 0.97
    assert kept[0] / kept[1] > 0.75  # adjacent-cloud dilation masks some clear pixels by design
