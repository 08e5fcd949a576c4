"""Corrupt and awkward inputs: each is masked and reported, or a clear error - never a guess.

Complements tests/cube/test_cube_assemble.py (garbage COG, 404, same-day duplicates, two UTM
zones, Fmask fill rows) with the cases of issue #8 it does not cover.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from geoproc.catalog.search import search_tiles
from geoproc.cube.assemble import CubeOptions, read_step
from geoproc.cube.store import build_cubes
from geoproc.errors import NoDataError
from tests.helpers.cube_items import ENCODE_BASE, TILE, make_item


def _steps(root):
    return (
        search_tiles(
            root / "items", [TILE], collections=["HLSL30_2.0"], start="2024-01-01", end="2024-12-31"
        )
        .tiles[TILE.id]
        .steps
    )


def test_truncated_cog_is_masked_and_reported(tmp_path):
    item = make_item(tmp_path, "cut", fmask=np.zeros((80, 80), np.uint8))
    red = item["assets"]["B04"]["href"]
    data = open(red, "rb").read()
    open(red, "wb").write(data[: len(data) // 2])  # header intact, tiles cut off
    step = _steps(tmp_path)[0]
    out = read_step(step, TILE, ["green", "red"], CubeOptions())
    assert [(e["item"], e["asset"]) for e in out.errors] == [("cut", "B04")]
    assert np.isnan(out.bands["red"]).all()
    green = np.round(out.bands["green"] / 1e-4).astype(int) - ENCODE_BASE
    assert np.array_equal(green, np.indices(TILE.shape)[0] + 10)  # other bands intact


def test_wrong_crs_in_the_item_is_ignored_the_file_georeferencing_wins(tmp_path):
    """An item claiming EPSG:32633 for a 32632 file: pixels land where the file says."""
    make_item(tmp_path, "ok", fmask=np.zeros((80, 80), np.uint8))
    good = read_step(_steps(tmp_path)[0], TILE, ["red"], CubeOptions())
    item = json.loads((tmp_path / "items" / "ok.json").read_text())
    item["properties"]["proj:epsg"] = 32633
    for asset in item["assets"].values():
        asset["proj:epsg"] = 32633
    (tmp_path / "items" / "ok.json").write_text(json.dumps(item))
    lied = read_step(_steps(tmp_path)[0], TILE, ["red"], CubeOptions())
    assert np.array_equal(good.bands["red"], lied.bands["red"], equal_nan=True)
    assert np.isfinite(lied.bands["red"]).all()


def test_fmask_fill_255_everywhere_masks_every_pixel(tmp_path):
    make_item(tmp_path, "fill", fmask=np.full((80, 80), 255, np.uint8))
    out = read_step(_steps(tmp_path)[0], TILE, ["green", "red"], CubeOptions())
    assert np.isnan(out.bands["red"]).all() and np.isnan(out.bands["green"]).all()
    assert (out.qa["fmask"] == 255).all()
    assert out.errors == []  # fill is data, not a failure


def test_tile_with_no_clear_pixel_all_year_is_complete_and_all_nan(tmp_path):
    cloud = np.full((80, 80), 1 << 1, np.uint8)  # Fmask bit 1: cloud
    make_item(tmp_path, "c1", datetime="2024-03-01T10:20:30Z", fmask=cloud)
    make_item(tmp_path, "c2", datetime="2024-09-01T10:20:30Z", fmask=cloud)
    rec = build_cubes(
        str(tmp_path / "items"), collections=["HLSL30_2.0"], aoi=TILE.id, start="2024-01-01",
        end="2024-12-31", out=str(tmp_path / "out"), tile_size_px=64,
        options=CubeOptions(bands=("red",)),
    )  # fmt: skip
    import xarray as xr

    ds = xr.open_zarr(tmp_path / "out" / "cubes" / f"{TILE.id}.zarr")
    assert ds.sizes["time"] == 2 and bool(ds.time_complete.all())
    assert bool(ds.red.isnull().all())
    assert (ds.fmask.values == 2).all()  # the QA says why: cloud, kept for the products
    assert rec["tiles"][TILE.id]["asset_errors"] == []


def test_empty_search_is_no_data_error_and_writes_nothing(tmp_path):
    make_item(tmp_path, "old", datetime="2020-06-01T10:20:30Z", fmask=np.zeros((80, 80), np.uint8))
    with pytest.raises(NoDataError) as err:
        build_cubes(
            str(tmp_path / "items"), collections=["HLSL30_2.0"], aoi=TILE.id,
            start="2024-01-01", end="2024-12-31", out=str(tmp_path / "out"), tile_size_px=64,
        )  # fmt: skip
    assert "--start" in str(err.value) or "--aoi" in str(err.value)
    assert not (tmp_path / "out").exists()


def test_items_from_two_utm_zones_land_on_one_tile_grid(tmp_path):
    """Same solar day, one granule per zone: both read onto the tile's zone, no mixed CRS."""
    from affine import Affine
    from pyproj import Transformer

    make_item(tmp_path, "z32", fmask=np.zeros((80, 80), np.uint8), cloud_cover=50.0)
    to33 = Transformer.from_crs(32632, 32633, always_xy=True)
    xs, ys = np.meshgrid(TILE.x_coords, TILE.y_coords)
    sx, sy = to33.transform(xs, ys)
    x0, y0 = np.floor(sx.min() / 30) * 30 - 300, np.ceil(sy.max() / 30) * 30 + 300
    shape = (int((y0 - sy.min()) // 30) + 20, int((sx.max() - x0) // 30) + 20)
    make_item(
        tmp_path, "z33", crs="EPSG:32633", transform=Affine(30.0, 0, x0, 0, -30.0, y0),
        shape=shape, fmask=np.zeros(shape, np.uint8), cloud_cover=5.0,
        datetime="2024-06-01T10:21:00Z",
    )  # fmt: skip
    (step,) = _steps(tmp_path)
    assert step.item_ids == ["z33", "z32"]  # clearest first
    out = read_step(step, TILE, ["red"], CubeOptions())
    assert out.errors == [] and np.isfinite(out.bands["red"]).all()
    expected_col = np.floor((sx - x0) / 30).astype(int)
    assert np.array_equal(np.round(out.bands["red"] / 1e-4).astype(int) - ENCODE_BASE, expected_col)
