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


def _landsat_items(tmp_path):
    """USGS-shaped landsat-c2l2-sr and -st items (common-name keys, scene split in two) for
    the real Greenland Landsat 8 C2 L2 files (thinned to 512 x 512 px of ~515 m)."""
    import json

    folder = REAL / "landsat-c2l2-greenland"
    scene = "LC08_L2SP_005009_20150710_20200908_02_T2"
    sr = json.loads((folder / f"{scene}_SR_stac.json").read_text())

    def item(suffix, collection, assets):
        return {
            "type": "Feature", "stac_version": "1.0.0", "id": f"{scene}_{suffix}",
            "collection": collection, "geometry": sr["geometry"],
            "properties": {"datetime": "2015-07-10T14:00:00Z", "eo:cloud_cover": 54.65,
                           "proj:epsg": 32624},
            "assets": {k: {"href": str(folder / f"{scene}_{f}.TIF"), "roles": ["data"]}
                       for k, f in assets.items()},
        }  # fmt: skip

    return [
        item("SR", "landsat-c2l2-sr", {"red": "SR_B4", "nir08": "SR_B5", "qa_pixel": "QA_PIXEL"}),
        item("ST", "landsat-c2l2-st", {"lwir11": "ST_B10", "trad": "ST_TRAD", "urad": "ST_URAD",
                                       "drad": "ST_DRAD", "atran": "ST_ATRAN", "emis": "ST_EMIS",
                                       "qa_pixel": "QA_PIXEL"}),
    ]  # fmt: skip


def test_landsat_c2_l2_sr_st_and_atmosphere_layers_from_real_pixels(tmp_path):
    """Every cube value is the USGS scaling of the source pixel under it; QA_PIXEL masks."""
    import rasterio
    from affine import Affine

    from geoproc.catalog.search import group_time_steps
    from geoproc.catalog.sensors import profile_for
    from geoproc.cube.assemble import cube_band_names, qa_names, read_step
    from geoproc.grid import Tile

    tile = Tile(24, False, 12, 211, tile_size_px=64, resolution=600.0)
    profile = profile_for("landsat-c2l2-sr")
    step = group_time_steps([(i, profile) for i in _landsat_items(tmp_path)], tile)[0]
    assert step.platform == "LC2" and len(step.items) == 2
    names = cube_band_names(["landsat-c2-l2"], CubeOptions())
    assert names[-6:] == ["st_temperature", "st_trad", "st_urad", "st_drad", "st_atran", "st_emis"]
    assert qa_names(["landsat-c2-l2"]) == ["fmask"]
    wanted = ["red", "nir08", "st_temperature", "st_trad", "st_atran", "st_emis"]
    data = read_step(step, tile, wanted, CubeOptions())
    # only the SR-only bands the SR item lacks (coastal, ...) were not asked for: no errors
    assert data.errors == []

    folder = REAL / "landsat-c2l2-greenland"
    scene = "LC08_L2SP_005009_20150710_20200908_02_T2"

    def source(name):
        with rasterio.open(folder / f"{scene}_{name}.TIF") as src:
            return src.read(1), src.transform

    qa, transform = source("QA_PIXEL")
    xs, ys = np.meshgrid(tile.x_coords, tile.y_coords)
    col, row = ~Affine(*transform[:6]) * (xs, ys)
    r, c = np.floor(row).astype(int), np.floor(col).astype(int)
    q = qa[r, c].astype(np.int64)
    fill = (q & 1) == 1
    cloudy = ((q >> 3) & 1 | (q >> 1) & 1 | (q >> 4) & 1).astype(bool)  # cloud, dilated, shadow
    clear = ~fill & ~cloudy
    assert clear.sum() > 1000 and cloudy.sum() > 1000 and fill.sum() > 500  # all three
    # QA_PIXEL became Fmask bits: cloud (QA bit 3) -> Fmask bit 1, fill -> 255
    fm = data.qa["fmask"]
    assert np.array_equal((fm[~fill] >> 1) & 1, ((q[~fill] >> 3) & 1).astype(np.uint8))
    assert (fm[fill] == 255).all()
    for name, asset, scale, offset, nodata in [
        ("red", "SR_B4", 2.75e-5, -0.2, 0),
        ("st_temperature", "ST_B10", 0.00341802, 149.0, 0),
        ("st_trad", "ST_TRAD", 0.001, 0.0, -9999),
        ("st_atran", "ST_ATRAN", 0.0001, 0.0, -9999),
        ("st_emis", "ST_EMIS", 0.0001, 0.0, -9999),
    ]:
        dn = source(asset)[0][r, c].astype(np.float64)
        ok = clear & (dn != nodata)
        expect = (dn * scale + offset).astype(np.float32)
        np.testing.assert_allclose(data.bands[name][ok], expect[ok], rtol=1e-6, err_msg=name)
        assert np.isnan(data.bands[name][cloudy | fill]).all(), name
    st = data.bands["st_temperature"][clear]
    assert 230 < np.nanmedian(st) < 300  # Greenland in July, kelvin


def test_landsat_c2_l2_cube_store_holds_the_st_layers_with_cf_attributes(tmp_path):
    """Through search and the store: ST layers are float32 with units, QA in `fmask`."""
    import json

    from geoproc.grid import Tile

    folder = tmp_path / "items"
    folder.mkdir()
    for item in _landsat_items(tmp_path):
        (folder / f"{item['collection']}-{item['id']}.json").write_text(json.dumps(item))
    tile = Tile(24, False, 12, 211, tile_size_px=64, resolution=600.0)
    rec = build_cubes(str(folder), collections=["landsat-c2-l2"], aoi=tile.id, start="2015-07-10",
                      end="2015-07-10", out=str(tmp_path / "out"), tile_size_px=64,
                      resolution=600.0, options=CubeOptions(bands=("red", "nir08", "st_temperature",
                      "st_trad", "st_urad", "st_drad", "st_atran", "st_emis")))  # fmt: skip
    assert rec["tiles"][tile.id]["asset_errors"] == []
    ds = xr.open_zarr(tmp_path / "out" / "cubes" / f"{tile.id}.zarr")
    assert list(ds.platform.values) == ["LC2"]
    assert ds.attrs["geoproc:source_items"] == [[f"{_SCENE}_SR", f"{_SCENE}_ST"]]
    assert (
        ds.st_trad.encoding["dtype"] == np.float32
        and ds.st_trad.attrs["units"] == "W m-2 sr-1 um-1"
    )
    assert ds.st_temperature.attrs["standard_name"] == "surface_temperature"
    st = ds.st_temperature.values[0]
    assert np.isfinite(st).sum() > 1000 and 230 < np.nanmedian(st) < 300
    assert ((ds.fmask.values[0] != 255) & np.isfinite(ds.red.values[0])).sum() > 1000


_SCENE = "LC08_L2SP_005009_20150710_20200908_02_T2"
