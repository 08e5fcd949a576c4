"""Real data: a Landsat C2 L2 cube (ST_TRAD, ST atmosphere, ST_EMIS layers) feeds LST per pixel.

The cube-shaped datasets are built from the real scenes in tests/data/realdata with the
names, scales, QA recoding and masking of `geoproc.catalog.sensors.LANDSAT_C2_L2` and
`geoproc.cube.assemble`, so `lst.run` sees what `geoproc cube build` writes. Reference: USGS
ST_B10 / ST_B6 (the cube's ``st_temperature``) on QA_PIXEL-clear pixels.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rioxarray
import xarray as xr

from geoproc.catalog.sensors import DEFAULT_FMASK_MASKED, FMASK_BITS, FMASK_NODATA, LANDSAT_C2_L2
from geoproc.cube.assemble import band_attrs, qa_to_cube
from geoproc.errors import UsageError
from geoproc.products import lst
from geoproc.products.lst.landsat_c2 import SENSORS, _find_mtl, load_landsat_c2_l2, read_mtl
from geoproc.products.lst.score import score

GREENLAND = "landsat-c2l2-greenland"
AUSTRALIA = "landsat-c2l2-australia"
QA_PIXEL_CLEAR_BIT = 6


def _raster(path) -> xr.DataArray:
    return rioxarray.open_rasterio(path, masked=False).squeeze("band", drop=True).load()


def cube_from_scene(folder) -> tuple[xr.Dataset, np.ndarray]:
    """(the scene as a one-step Landsat C2 L2 cube, QA_PIXEL-clear mask) from a C2 L2 folder."""
    mtl = _find_mtl(folder)
    meta = read_mtl(mtl)
    sensor = SENSORS[meta["IMAGE_ATTRIBUTES"]["SPACECRAFT_ID"]]
    prefix = meta["PRODUCT_CONTENTS"]["LANDSAT_PRODUCT_ID"]
    sr_asset = {name: asset for asset, name in sensor.sr_bands.items()}
    raw_qa = _raster(mtl.parent / f"{prefix}_QA_PIXEL.TIF")
    fmask = qa_to_cube(raw_qa.values, None, LANDSAT_C2_L2.qa)
    bits = sum(1 << FMASK_BITS[b] for b in DEFAULT_FMASK_MASKED)
    masked = (fmask == FMASK_NODATA) | ((fmask & bits) != 0)
    data = {"fmask": (("y", "x"), fmask, {"long_name": "fmask"})}
    for band in LANDSAT_C2_L2.bands:
        if band.name == "st_temperature":
            asset = f"ST_B{sensor.thermal_band}"
        else:
            asset = sr_asset.get(band.name, band.keys[0] if band.keys else None)
        path = mtl.parent / f"{prefix}_{asset}.TIF"
        if asset is None or not path.exists():
            continue  # e.g. no coastal band on TM / ETM+
        dn = _raster(path).values.astype(np.float64)
        value = (dn * band.scale + band.offset).astype(np.float32)
        value[(dn == band.nodata) | masked] = np.nan
        data[band.name] = (("y", "x"), value, band_attrs(band.name))
    ds = xr.Dataset(data, coords={"y": raw_qa.y.values, "x": raw_qa.x.values})
    ds = ds.expand_dims(time=[np.datetime64(meta["IMAGE_ATTRIBUTES"]["DATE_ACQUIRED"], "ns")])
    ds = ds.assign_coords(platform=("time", ["LC2"]))
    clear = ((raw_qa.values >> QA_PIXEL_CLEAR_BIT) & 1 == 1) & ((raw_qa.values & 1) == 0)
    clear = clear[None] & np.isfinite(ds.st_temperature.values)
    return ds, clear


@pytest.fixture(scope="module")
def greenland(realdata):
    return cube_from_scene(realdata / GREENLAND)


def test_cube_lst_matches_usgs_st_b10_and_the_loader_path(greenland, realdata):
    cube, clear = greenland
    out = lst.run(cube, usgs_emissivity=True)
    s = score(out.lst.values, cube.st_temperature.values, mask=clear)
    # measured: RMSE 0.114 K, bias +0.11 K on 47,323 clear pixels (the TIRS K1/K2 departure)
    assert s["n"] > 40_000 and s["rmse"] <= 0.3 and abs(s["bias"]) < 0.2
    # every valid pixel was an RTE inversion with the dataset's (ST) atmosphere
    qa = out.lst_qa.values[np.isfinite(out.lst.values)]
    assert (((qa >> lst.QA_METHOD_SHIFT) & 3) == lst.METHOD_CODES["rte"]).all()
    assert (((qa >> lst.QA_ATMOSPHERE_SHIFT) & 3) == lst.ATMOSPHERE_SOURCES["dataset"]).all()
    # the cube does not name the spacecraft: Landsat 8 is assumed, and the output says so
    assert out.attrs["geoproc:thermal_constants"].startswith("landsat8 (assumed")
    assert "ST_TRAD" in out.attrs["geoproc:lwir11_source"].upper()
    assert json.loads(out.attrs["parameters"])["usgs_emissivity"] is True

    loader = load_landsat_c2_l2(realdata / GREENLAND, usgs_emissivity=True)
    via_loader = lst.run(loader)
    # same pixels, same values: the cube's float32 layers move LST by < 1e-4 K
    assert np.array_equal(np.isnan(out.lst.values), np.isnan(via_loader.lst.values))
    np.testing.assert_allclose(out.lst.values, via_loader.lst.values, atol=1e-4, equal_nan=True)
    np.testing.assert_allclose(
        out.lst_uncertainty.values, via_loader.lst_uncertainty.values, atol=1e-4, equal_nan=True
    )


def test_cube_lst_with_ndvi_emissivity_equals_the_loader_path(greenland, realdata):
    cube, _ = greenland
    out = lst.run(cube)
    via_loader = lst.run(load_landsat_c2_l2(realdata / GREENLAND))
    assert "geoproc:emissivity_source" not in out.attrs
    np.testing.assert_allclose(out.lst.values, via_loader.lst.values, atol=1e-4, equal_nan=True)
    np.testing.assert_array_equal(out.lst_qa.values, via_loader.lst_qa.values)


def test_st_surface_temperature_named_lwir11_is_never_read_as_brightness_temperature(greenland):
    cube, clear = greenland
    as_lwir11 = cube.rename(st_temperature="lwir11")
    out = lst.run(as_lwir11, usgs_emissivity=True)
    expected = lst.run(cube, usgs_emissivity=True)
    np.testing.assert_array_equal(out.lst.values, expected.lst.values)
    # without the ST radiance and atmosphere, an ST lwir11 is refused (LST of LST otherwise)
    bare = as_lwir11.drop_vars(["st_trad", "st_urad", "st_drad", "st_atran"])
    with pytest.raises(UsageError, match="st_trad"):
        lst.run(bare)
    with pytest.raises(UsageError, match="surface temperature"):
        lst.run(cube.drop_vars(["st_trad"]))


def test_masked_st_layer_gives_no_lst(greenland):
    """A pixel whose ST atmosphere is masked gets no value (no single-channel fallback)."""
    cube, clear = greenland
    ys, xs = np.nonzero(clear[0])
    holes = cube.copy()
    for name, pick in (("st_atran", slice(0, 50)), ("st_urad", slice(50, 100))):
        values = holes[name].values.copy()
        values[0, ys[pick], xs[pick]] = np.nan
        holes[name] = holes[name].copy(data=values)
    out = lst.run(holes, usgs_emissivity=True)
    assert np.isnan(out.lst.values[0, ys[:100], xs[:100]]).all()
    assert (out.lst_qa.values[0, ys[:100], xs[:100]] & lst.QA_MASKED).all()
    assert np.isfinite(out.lst.values[0, ys[100:], xs[100:]]).mean() > 0.99


def test_cube_sensor_from_attributes_and_platform_coordinate(greenland):
    cube, _ = greenland
    by_attr = lst.run(cube.assign_attrs(spacecraft="LANDSAT_8"), usgs_emissivity=True)
    assert by_attr.attrs["geoproc:thermal_constants"].startswith("landsat8 (dataset attribute")
    by_coord = lst.run(cube.assign_coords(platform=("time", ["LC08"])), usgs_emissivity=True)
    assert by_coord.attrs["geoproc:thermal_constants"].startswith("landsat8 (platform coordinate")
    by_mtl = lst.run(cube.assign_attrs(thermal_k1=774.8853, thermal_k2=1321.0789))
    assert "thermal_k1" in by_mtl.attrs["geoproc:thermal_constants"]
    # an explicit sensor changes K1/K2 (and so the BT) consistently: still a sane LST
    as_l9 = lst.run(cube, thermal_constants="landsat9", usgs_emissivity=True)
    assert as_l9.attrs["geoproc:thermal_k1"] == pytest.approx(799.0284)
    diff = np.nanmedian(as_l9.lst.values - by_attr.lst.values)
    assert 0.0 < abs(diff) < 2.0


@pytest.mark.parametrize(
    ("scene", "spacecraft", "rmse_max"),
    [
        ("LC08_L2SP_098084_20210503_20210508_02_T1", "landsat-8", 0.3),
        ("LE07_L2SP_090084_20210331_20210426_02_T1", "landsat-7", 0.3),
        ("LT05_L2SP_090084_19980308_20200909_02_T1", "landsat-5", 0.3),
    ],
)
def test_australia_cubes_per_sensor(realdata, scene, spacecraft, rmse_max):
    folder = realdata / AUSTRALIA / scene
    cube, clear = cube_from_scene(folder)
    out = lst.run(cube.assign_attrs(platform=spacecraft), usgs_emissivity=True)
    s = score(out.lst.values, cube.st_temperature.values, mask=clear)
    # measured RMSE (K): L8 0.154, L7 0.027, L5 0.042 (with the TM Planck offset)
    assert s["n"] > 150 and s["rmse"] <= rmse_max
    via_loader = lst.run(load_landsat_c2_l2(folder, usgs_emissivity=True))
    np.testing.assert_allclose(out.lst.values, via_loader.lst.values, atol=1e-3, equal_nan=True)


def test_cube_mixing_sensors_runs_each_with_its_own_band(realdata):
    """A TM + ETM+ cube: the sensor of each step comes from geoproc:source_items."""
    l5, l5_clear = cube_from_scene(
        realdata / AUSTRALIA / "LT05_L2SP_090084_19980308_20200909_02_T1"
    )
    l7, l7_clear = cube_from_scene(
        realdata / AUSTRALIA / "LE07_L2SP_090084_20210331_20210426_02_T1"
    )
    # the two thinned scenes have the same 60 x 60 px shape and spacing; put them on one grid
    mixed = xr.concat([l5.assign_coords(x=l7.x, y=l7.y), l7], dim="time")
    mixed.attrs["geoproc:source_items"] = [
        [
            "LT05_L2SP_090084_19980308_20200909_02_T1_SR",
            "LT05_L2SP_090084_19980308_20200909_02_T1_ST",
        ],
        [
            "LE07_L2SP_090084_20210331_20210426_02_T1_SR",
            "LE07_L2SP_090084_20210331_20210426_02_T1_ST",
        ],
    ]
    out = lst.run(mixed, usgs_emissivity=True)
    assert out.attrs["geoproc:thermal_constants"].startswith("per time step: landsat5 (1 steps)")
    assert json.loads(out.attrs["parameters"])["thermal_constants"] == "auto"
    for step, (cube, clear, sensor) in enumerate(
        ((l5, l5_clear, "landsat-5"), (l7, l7_clear, "landsat-7"))
    ):
        alone = lst.run(cube.assign_attrs(platform=sensor), usgs_emissivity=True)
        np.testing.assert_array_equal(out.lst.values[step], alone.lst.values[0])
        s = score(out.lst.values[step : step + 1], cube.st_temperature.values, mask=clear)
        assert s["rmse"] <= 0.3  # measured 0.042 (TM), 0.027 (ETM+)
    # a step no id names is taken as Landsat 8, the named one keeps its own band
    unnamed = mixed.assign_attrs(
        {"geoproc:source_items": [["x_SR"], mixed.attrs["geoproc:source_items"][1]]}
    )
    partly = lst.run(unnamed, usgs_emissivity=True)
    assert partly.attrs["geoproc:thermal_constants"].startswith("per time step: landsat8 (1 steps)")
    np.testing.assert_array_equal(partly.lst.values[1], out.lst.values[1])
    # one sensor named per step by the product ids alone
    one = l7.assign_attrs(
        {"geoproc:source_items": [["LE07_L2SP_090084_20210331_20210426_02_T1_ST"]]}
    )
    assert (
        lst.run(one).attrs["geoproc:thermal_constants"].startswith("landsat7 (geoproc:source_items")
    )


def test_lst_on_a_cube_built_end_to_end_from_usgs_items(realdata, tmp_path):
    """`geoproc cube build`'s library call on USGS-shaped landsat-c2l2-sr/-st items, then LST."""
    from geoproc.cube.assemble import CubeOptions
    from geoproc.cube.store import build_cubes
    from geoproc.grid import Tile

    folder = realdata / GREENLAND
    scene = "LC08_L2SP_005009_20150710_20200908_02_T2"
    geometry = json.loads((folder / f"{scene}_SR_stac.json").read_text())["geometry"]
    items = tmp_path / "items"
    items.mkdir()
    for suffix, collection, assets in (
        ("SR", "landsat-c2l2-sr", {"red": "SR_B4", "nir08": "SR_B5", "qa_pixel": "QA_PIXEL"}),
        ("ST", "landsat-c2l2-st", {"lwir11": "ST_B10", "trad": "ST_TRAD", "urad": "ST_URAD",
                                   "drad": "ST_DRAD", "atran": "ST_ATRAN", "emis": "ST_EMIS",
                                   "qa_pixel": "QA_PIXEL"}),
    ):  # fmt: skip
        item = {
            "type": "Feature", "stac_version": "1.0.0", "id": f"{scene}_{suffix}",
            "collection": collection, "geometry": geometry,
            "properties": {"datetime": "2015-07-10T14:00:00Z", "proj:epsg": 32624},
            "assets": {k: {"href": str(folder / f"{scene}_{f}.TIF"), "roles": ["data"]}
                       for k, f in assets.items()},
        }  # fmt: skip
        (items / f"{collection}-{item['id']}.json").write_text(json.dumps(item))
    tile = Tile(24, False, 12, 211, tile_size_px=64, resolution=600.0)
    bands = (
        "red",
        "nir08",
        "st_temperature",
        "st_trad",
        "st_urad",
        "st_drad",
        "st_atran",
        "st_emis",
    )
    rec = build_cubes(str(items), collections=["landsat-c2-l2"], aoi=tile.id, start="2015-07-10",
                      end="2015-07-10", out=str(tmp_path / "out"), tile_size_px=64,
                      resolution=600.0, options=CubeOptions(bands=bands))  # fmt: skip
    assert rec["tiles"][tile.id]["asset_errors"] == []
    cube = xr.open_zarr(tmp_path / "out" / "cubes" / f"{tile.id}.zarr")
    # the product stage hands run() only the variables the SPEC declares: the ST layers too
    from geoproc.inference.product_stage import declared_inputs

    out = lst.run(declared_inputs(cube, lst.SPEC), usgs_emissivity=True).load()
    assert out.attrs["geoproc:thermal_constants"].startswith("landsat8 (geoproc:source_items")
    st = cube.st_temperature.values
    clear = np.isfinite(st) & np.isfinite(cube.st_trad.values)
    s = score(out.lst.values, st, mask=clear)
    # measured: RMSE 0.11 K over 1,659 clear 600 m cells (6.6 K when the cube's empty
    # per-scene atmos_* won over the ST layers and single-channel ran instead)
    assert s["n"] > 1000 and s["rmse"] <= 0.3
    qa = out.lst_qa.values[np.isfinite(out.lst.values)]
    assert (((qa >> lst.QA_METHOD_SHIFT) & 3) == lst.METHOD_CODES["rte"]).all()
    # cloud-masked cube cells (NaN ST radiance) never get an LST
    assert np.isnan(out.lst.values[~np.isfinite(cube.st_trad.values)]).all()


@pytest.mark.parametrize("budget", [2**15, 2**28])
def test_blocks_of_one_sensor_in_a_mixed_cube_give_the_whole_tile_bytes(realdata, tmp_path, budget):
    """Blocks hold a few dates (LST's dates are independent): a block holding only the TM
    step of a TM + ETM+ cube still runs per sensor (its items name the sensor) with the
    scene-wide statistics, so the blocked store has the whole-tile bytes, attributes too;
    so do groups of whole scenes, where one date of the tile fits the budget."""
    import hashlib
    import warnings

    from geoproc import storage
    from geoproc.inference import product_stage
    from geoproc.product_runner import open_cube, run_product_on_cube, select_inputs

    l5, _ = cube_from_scene(realdata / AUSTRALIA / "LT05_L2SP_090084_19980308_20200909_02_T1")
    l7, _ = cube_from_scene(realdata / AUSTRALIA / "LE07_L2SP_090084_20210331_20210426_02_T1")
    mixed = xr.concat([l5.assign_coords(x=l7.x, y=l7.y), l7], dim="time")
    mixed["time_complete"] = ("time", np.ones(2, bool))
    mixed.attrs["geoproc:source_items"] = [
        ["LT05_L2SP_090084_19980308_20200909_02_T1_ST"],
        ["LE07_L2SP_090084_20210331_20210426_02_T1_ST"],
    ]
    url = str(tmp_path / "cube.zarr")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mixed.to_zarr(storage.zarr_store(url), mode="w", consolidated=True, zarr_format=3)
        inputs = product_stage.declared_inputs(
            select_inputs(open_cube(url, dask=False), "lst"), lst.SPEC
        )
        windows = product_stage.plan_date_windows(inputs, halo=0, budget_bytes=budget)
        whole = run_product_on_cube("lst", url, str(tmp_path / "whole"), tile="T", blocking="tile")
        blocked = run_product_on_cube(
            "lst", url, str(tmp_path / "blocked"), tile="T", block_memory_bytes=budget
        )
    if budget == 2**15:  # windows of one date each
        assert {b.time.stop - b.time.start for b in windows} == {1} and len(windows) > 2
    else:  # both scenes in one group
        assert [(b.axis, b.time) for b in windows] == [("time", slice(0, 2))]
    assert blocked.mode == "space"

    def digest(root: str) -> dict[str, str]:
        files = sorted(p for p in Path(root).rglob("*") if p.is_file())
        return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}

    expected = digest(whole.store)
    assert len(expected) > 10 and digest(blocked.store) == expected
    out = xr.open_zarr(blocked.store, consolidated=True)
    assert np.isfinite(out["lst"].values).sum(axis=(1, 2)).min() > 100
