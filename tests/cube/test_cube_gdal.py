"""Stores geoproc's real writers produce open in GDAL (rasterio's ``ZARR:`` driver, GDAL 3.10)
with the values and georeferencing xarray sees; stores of the previous Zarr v3 layout are
still read, extended and verified."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import rasterio
import xarray as xr

from geoproc import storage, zarr_layout
from geoproc.cube import store as cube_store
from geoproc.cube.verify import verify_cube
from geoproc.product_runner import run_product_on_cube
from tests.helpers.cube_builds import build_cube, cube_path, make_archive
from tests.helpers.cube_items import TILE

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _gdal_matches_xarray(store, name: str) -> None:
    """GDAL's raw values, nodata, scale/offset, CRS and transform equal xarray's view."""
    raw = xr.open_zarr(store, mask_and_scale=False, decode_coords="all")[name]
    decoded = xr.open_zarr(store, decode_coords="all")[name]
    with rasterio.open(f'ZARR:"{store}":/{name}') as src:
        assert src.crs == raw.rio.crs and src.crs.to_epsg() == 32632
        assert tuple(src.transform)[:6] == tuple(decoded.rio.transform())[:6]
        assert tuple(src.transform)[:6] == tuple(TILE.transform)[:6]
        values = src.read()
        nodata, scales, offsets = src.nodata, src.scales, src.offsets
    assert values.shape == raw.shape and values.dtype == raw.dtype
    np.testing.assert_array_equal(values, raw.values)
    fill = raw.attrs.get("_FillValue")
    if fill is not None:
        assert nodata == fill or (np.isnan(nodata) and np.isnan(fill))
        physical = np.where(values == fill, np.nan, values * scales[0] + offsets[0])
        np.testing.assert_allclose(physical, decoded.values, rtol=1e-6, equal_nan=True)


def test_cube_and_product_variables_open_in_gdal_like_in_xarray(tmp_path):
    cat = make_archive(tmp_path, n=3)
    out = tmp_path / "out"
    build_cube(cat, out)
    cube = cube_path(out)
    doc = json.loads((cube / ".zmetadata").read_text())["metadata"]
    assert doc["platform/.zarray"]["dtype"] == "|S3"  # bytes, not FixedLengthUTF32
    assert doc["red/.zarray"]["compressor"] == {"id": "zstd", "level": 1, "checksum": True}
    ds = xr.open_zarr(cube)
    assert ds["platform"].values.tolist() == ["L30"] * 3
    assert ds["red"].encoding["scale_factor"] == 1e-4
    for name in ("red", "lwir11"):  # int16 packed reflectance and brightness temperature
        _gdal_matches_xarray(cube, name)
    with rasterio.open(f'ZARR:"{cube}":/fmask') as src:  # QA bits: integers, no nodata
        np.testing.assert_array_equal(src.read(), ds["fmask"].values)
        assert src.nodata is None

    for blocking in ("time", "tile"):  # the blocked (template + regions) and whole writers
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            product = run_product_on_cube(
                "lst", str(cube), str(tmp_path / blocking), tile=TILE.id,
                options={"emissivity": 0.97}, blocking=blocking,
            )  # fmt: skip
        assert product.status == "written" and product.mode == blocking
        assert zarr_layout.store_format(storage.parse_url(product.store)) == 2
        _gdal_matches_xarray(product.store, "lst")


def _old_layout_codecs() -> list:
    from zarr.codecs import Crc32cCodec, ZstdCodec

    return [ZstdCodec(level=1), Crc32cCodec()]


def test_previous_zarr_v3_layout_is_read_extended_and_verified(tmp_path, monkeypatch, caplog):
    """A store of the previous layout (Zarr v3, zstd + crc32c) keeps working in its format."""
    cat = make_archive(tmp_path, n=3)
    out = tmp_path / "old"
    with monkeypatch.context() as m:  # the previous writer: v3 metadata, crc32c codec
        m.setattr(zarr_layout, "ZARR_FORMAT", 3)
        m.setattr(cube_store, "_chunk_codecs", _old_layout_codecs)
        build_cube(cat, out, end="2024-02-20")  # 2 of the 3 dates
    store = cube_path(out)
    assert (store / "zarr.json").is_file() and not (store / ".zgroup").exists()
    rec = build_cube(cat, out)["tiles"][TILE.id]  # today's code appends the third date
    assert rec["steps_written"] == ["2024-03-11T10:20:30/L30"] and rec["steps_skipped"] == 2
    assert "previous Zarr v3 layout" in caplog.text and str(store) in caplog.text
    assert not (store / ".zgroup").exists()  # still one format, not a mixed store
    appended = xr.open_zarr(store).load()
    fresh = xr.open_zarr(cube_path(_fresh_build(cat, tmp_path))).load()
    assert appended["platform"].values.tolist() == ["L30"] * 3
    np.testing.assert_array_equal(appended["time"].values, fresh["time"].values)
    for name in ("red", "lwir11", "fmask"):
        np.testing.assert_array_equal(appended[name].values, fresh[name].values)
    location = storage.parse_url(str(store))
    assert verify_cube(location, level="full").ok
    chunk = store / "red" / "c" / "2" / "0" / "0"  # v3 chunk key of the appended step
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    chunk.write_bytes(bytes(data))
    report = verify_cube(location, level="full")
    assert list(report.damaged) == [2] and "red" in report.damaged[2][0]


def _fresh_build(cat, tmp_path):
    out = tmp_path / "fresh"
    build_cube(cat, out)
    return out
