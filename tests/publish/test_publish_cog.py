"""COGs: valid by rio-cogeo, right CRS and grid, values equal to the Zarr store, metadata."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rioxarray
import xarray as xr
from rasterio.crs import CRS
from rio_cogeo.cogeo import cog_validate

from geoproc.publish.cog import cog_bytes
from geoproc.publish.colormaps import FLOOD_COLOR, PERMANENT_WATER_COLOR
from tests.helpers.published_stores import DATES, TILES, shared_published, tile_grid


@pytest.fixture(scope="module")
def published() -> Path:
    return shared_published()


def _store(out: Path, product: str, tile: str) -> xr.Dataset:
    return xr.open_zarr(out / "products" / product / f"{tile}.zarr", mask_and_scale=False)


@pytest.mark.parametrize("tile", sorted(TILES))
def test_cogs_are_valid_and_equal_the_store(published, tile):
    epsg, x, y = tile_grid(tile)
    for product, variables in (("flood", ("water", "water_probability")), ("lst", ("lst",))):
        ds = _store(published, product, tile)
        for i, date in enumerate(DATES):
            for name in variables:
                path = published / "cog" / product / tile / date / f"{name}.tif"
                valid, errors, warnings = cog_validate(str(path))
                assert valid, (path, errors)
                assert not errors
                expected = ds[name].isel(time=i).values
                with rasterio.open(path) as src:
                    assert src.crs == CRS.from_epsg(epsg)
                    # pixel centres of the store are the COG's pixel centres
                    assert src.transform.c == pytest.approx(x[0] - 15.0)
                    assert src.transform.f == pytest.approx(y[0] + 15.0)
                    assert src.transform.a == 30.0 and src.transform.e == -30.0
                    assert src.block_shapes[0] == (256, 256)
                    assert src.overviews(1), "internal overviews expected"
                    assert src.descriptions == (name,)
                    got = src.read(1)
                    assert got.dtype == expected.dtype
                    np.testing.assert_array_equal(got, expected)
                    if np.issubdtype(got.dtype, np.floating):
                        assert np.isnan(src.nodata)
                    else:
                        assert src.nodata == 255
                        assert (got == 255).any(), "synthetic store has masked pixels"


def test_cog_metadata_units_scale_flags_and_colour_table(published):
    tile = sorted(TILES)[0]
    path = published / "cog" / "flood" / tile / DATES[0] / "water.tif"
    with rasterio.open(path) as src:
        tags = src.tags(1)
        assert tags["flag_values"] == "0 1 2"
        assert tags["flag_meanings"] == "dry permanent_water flood"
        assert src.units == ("1",)
        assert src.scales == (1.0,) and src.offsets == (0.0,)
        cmap = src.colormap(1)
        assert cmap[2] == FLOOD_COLOR
        assert cmap[1] == PERMANENT_WATER_COLOR
        assert src.tags()["product"] == "flood"
    lst = published / "cog" / "lst" / tile / DATES[0] / "lst.tif"
    with rasterio.open(lst) as src:
        assert src.units == ("K",)
        assert src.tags(1)["standard_name"] == "surface_temperature"
        with pytest.raises(ValueError):
            src.colormap(1)  # continuous maps carry no colour table


def test_rioxarray_reads_the_same_values_and_crs(published):
    tile = sorted(TILES)[1]
    path = published / "cog" / "lst" / tile / DATES[1] / "lst.tif"
    da = rioxarray.open_rasterio(path, masked=True).squeeze("band", drop=True)
    ds = xr.open_zarr(published / "products" / "lst" / f"{tile}.zarr")
    ref = ds["lst"].isel(time=1)
    assert da.rio.crs == ds.rio.crs
    np.testing.assert_allclose(da["x"].values, ref["x"].values)
    np.testing.assert_allclose(da["y"].values, ref["y"].values)
    np.testing.assert_array_equal(np.isnan(da.values), np.isnan(ref.values))
    np.testing.assert_array_equal(da.values, ref.values)


def test_rio_cogeo_command_line_validates(published):
    path = published / "cog" / "flood" / sorted(TILES)[0] / DATES[0] / "water.tif"
    rio = Path(sys.executable).with_name("rio")
    result = subprocess.run(
        [str(rio), "cogeo", "validate", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "is a valid cloud optimized GeoTIFF" in result.stdout


def test_cog_bytes_are_deterministic_and_packed_values_keep_scale():
    """Same input, same bytes (no timestamp); packed ints keep scale/offset as metadata."""
    rng = np.random.default_rng(3)
    packed = rng.integers(0, 30000, size=(300, 280), dtype="int16")
    packed[:5] = -32768
    attrs = {
        "units": "K",
        "scale_factor": 0.01,
        "add_offset": 150.0,
        "_FillValue": -32768,
        "long_name": "lst packed",
    }
    kwargs = dict(
        crs=CRS.from_epsg(32633),
        transform=rasterio.Affine(30, 0, 300000, 0, -30, 5200000),
        name="lst",
        attrs=attrs,
    )
    first = cog_bytes(packed, **kwargs)
    assert first == cog_bytes(packed, **kwargs)
    with rasterio.MemoryFile(first) as mem, mem.open() as src:
        assert src.scales == (0.01,) and src.offsets == (150.0,)
        assert src.nodata == -32768
        np.testing.assert_array_equal(src.read(1), packed)
        # what a GDAL-based reader computes equals what xarray's decoding gives
        physical = src.read(1, masked=True) * src.scales[0] + src.offsets[0]
        assert physical[10, 10] == pytest.approx(packed[10, 10] * 0.01 + 150.0)
