"""The Zarr layout GDAL >= 3.10 (rasterio's) and xarray both open, with CRS and geotransform."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import rasterio
import rioxarray  # noqa: F401  (registers .rio)
import xarray as xr

from geoproc.zarr_layout import gdal_readable, to_zarr_kwargs, with_compressor


def _cf_dataset() -> xr.Dataset:
    x = 500_000.0 + 30.0 * (np.arange(6) + 0.5)
    y = 5_000_000.0 - 30.0 * (np.arange(4) + 0.5)
    lst = np.arange(48, dtype="float32").reshape(2, 4, 6) + 270.0
    lst[0, 0, 0] = np.nan
    ds = xr.Dataset(
        {
            "lst": (
                ("time", "y", "x"),
                lst,
                {"units": "K", "long_name": "land surface temperature"},
            ),
            "water": (("time", "y", "x"), (np.arange(48) % 3).astype("uint8").reshape(2, 4, 6)),
        },
        coords={
            "time": pd.date_range("2024-01-01", periods=2),
            "y": y,
            "x": x,
            "platform": ("time", np.array(["S30", "L30"])),
        },
    )
    ds = ds.rio.write_crs("EPSG:32632")
    for name in ds.data_vars:
        ds[name].attrs["grid_mapping"] = "spatial_ref"
    return ds


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_gdal_and_xarray_read_the_same_values_and_georeferencing(tmp_path):
    ds = _cf_dataset()
    path = tmp_path / "cube.zarr"
    gdal_readable(ds).to_zarr(path, mode="w", **to_zarr_kwargs())
    back = xr.open_zarr(path, decode_coords="all")  # spatial_ref as a coordinate
    assert back["platform"].values.tolist() == ["S30", "L30"]
    assert back["lst"].rio.crs.to_epsg() == 32632
    for name in ("lst", "water"):
        np.testing.assert_array_equal(back[name].values, ds[name].values)
        with rasterio.open(f'ZARR:"{path}":/{name}') as src:
            assert src.crs.to_epsg() == 32632
            assert tuple(src.transform)[:6] == (30.0, 0.0, 500_000.0, 0.0, -30.0, 5_000_000.0)
            assert src.count == 2 and (src.height, src.width) == (4, 6)
            np.testing.assert_array_equal(src.read(), ds[name].values)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_zarr_v3_default_is_what_gdal_cannot_read(tmp_path):
    """The finding the layout rests on: zarr-python 3's v3 stores fail in GDAL 3.10."""
    path = tmp_path / "v3.zarr"
    ds = _cf_dataset().drop_vars("platform")
    for name in ds.data_vars:
        del ds[name].attrs["grid_mapping"]
    ds.to_zarr(path, mode="w", zarr_format=3, consolidated=True)
    with pytest.raises(rasterio.errors.RasterioIOError):
        rasterio.open(f'ZARR:"{path}":/lst')


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_a_damaged_chunk_fails_to_decode_in_zarr_and_gdal(tmp_path, damage):
    """zstd's frame checksum (the layout's compressor) replaces Zarr v3's crc32c codec."""
    ds = _cf_dataset()
    ds["lst"].encoding["chunks"] = (1, 4, 6)  # one chunk per time step
    path = tmp_path / "cube.zarr"
    with_compressor(gdal_readable(ds)).to_zarr(path, mode="w", **to_zarr_kwargs())
    chunk = path / "lst" / "1.0.0"
    data = bytearray(chunk.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0x01
    else:
        del data[len(data) // 2 :]
    chunk.write_bytes(bytes(data))
    back = xr.open_zarr(path)
    np.testing.assert_array_equal(back["lst"][0].values, ds["lst"][0].values)  # intact step
    with pytest.raises(RuntimeError, match="Zstd decompression error"):
        _ = back["lst"][1].values
    with rasterio.open(f'ZARR:"{path}":/lst') as src:
        np.testing.assert_array_equal(src.read(1), ds["lst"][0].values)
        with pytest.raises(rasterio.errors.RasterioIOError):
            src.read(2)
