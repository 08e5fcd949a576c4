"""The full-granule benchmark's generated archive has the shape the benchmark claims."""

from __future__ import annotations

import json

import pytest
import rasterio
from shapely.geometry import box

from geoproc.dev.bench._full_granules import (
    GRANULE_X0,
    GRANULE_Y1,
    RESOLUTION,
    TILE_ACROSS,
    TILE_INSIDE,
    ensure_granules,
)
from geoproc.grid import parse_tile_id


@pytest.mark.slow  # ~20-45 s: 7 full-size COGs
def test_generated_granules_are_hls_shaped_cogs_and_cached(tmp_path):
    folder = ensure_granules(tmp_path, size_px=1830, dates=1)
    items = sorted((folder / "items").glob("*.json"))
    assert len(items) == 1
    item = json.loads(items[0].read_text())
    assert sorted(item["assets"]) == ["B02", "B03", "B04", "B11", "B12", "B8A", "Fmask"]
    with rasterio.open(item["assets"]["B04"]["href"]) as src:
        assert (src.width, src.height, src.dtypes[0], src.nodata) == (1830, 1830, "int16", -9999)
        assert src.block_shapes[0] == (512, 512) and src.compression.name == "deflate"
        assert src.overviews(1)  # a COG, as the archives serve them
        dn = src.read(1)
    with rasterio.open(item["assets"]["Fmask"]["href"]) as src:
        fmask = src.read(1)
    # first date has the swath-edge no-data corner, clouds and water bits
    assert (dn == -9999).any() and ((fmask == 255) == (dn == -9999)).all()
    assert ((fmask & 2) != 0).any() and ((fmask & 32) != 0).any()
    granule = box(GRANULE_X0, GRANULE_Y1 - 1830 * RESOLUTION, GRANULE_X0 + 1830 * RESOLUTION,
                  GRANULE_Y1)  # fmt: skip
    inside = box(*parse_tile_id(TILE_INSIDE, tile_size_px=1024, resolution=30.0).bounds)
    across = box(*parse_tile_id(TILE_ACROSS, tile_size_px=1024, resolution=30.0).bounds)
    assert granule.contains(inside)
    assert 0 < across.intersection(granule).area < across.area
    mtime = items[0].stat().st_mtime_ns
    assert ensure_granules(tmp_path, size_px=1830, dates=1) == folder  # reused, not redone
    assert items[0].stat().st_mtime_ns == mtime
    assert 0 < item["properties"]["eo:cloud_cover"] < 80
