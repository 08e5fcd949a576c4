"""Real catalog items (issue #15): each parses to the exact asset, href and scaling it names.

Copies in tests/data/realdata/stac-items (sources and licences in its README):
Earth Search v1 `sentinel-2-c1-l2a` (philvarner/stac-factory, Apache-2.0) and Planetary
Computer `sentinel-1-rtc` (stac-utils/stac-geoparquet, MIT). Hand-built shapes stay in
test_provider_shapes.py; these pin what the real JSON says, so a drift between our
profiles and a provider's published items fails here.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from geoproc.catalog.items import locate_asset, parse_item
from geoproc.catalog.search import _item_epsg
from geoproc.catalog.sensors import SENTINEL1_RTC, SENTINEL2_L2A, profile_for
from geoproc.cube.assemble import scale_offset

ITEMS = Path(__file__).parents[1] / "data" / "realdata" / "stac-items"

ES_C1 = "stac-factory__S2B_T38XNF_20250422T091553_L2A.json"
ES_C1_BASE = (
    "https://e84-earth-search-sentinel-data.s3.us-west-2.amazonaws.com/sentinel-2-c1-l2a/"
    "38/X/NF/2025/4/S2B_T38XNF_20250422T091553_L2A/"
)
PC_S1 = "stac-geoparquet__S1A_IW_GRDH_1SDV_20240419T045904_20240419T045916_053498_067DF2_rtc.json"
PC_S1_BASE = (
    "https://sentinel1euwestrtc.blob.core.windows.net/sentinel1-grd-rtc/GRD/2024/4/19/IW/DV/"
    "S1A_IW_GRDH_1SDV_20240419T045904_20240419T045916_053498_067DF2_DCEC/measurement/"
)


def _load(name: str) -> dict:
    return json.loads((ITEMS / name).read_text(encoding="utf-8"))


def _located(name: str, band_name: str) -> tuple[str, str, int, tuple[float, float]]:
    """(asset key, href, band index, (scale, offset)) the pipeline reads for one band."""
    item = parse_item(_load(name), source=name)
    profile = profile_for(item.collection)
    band = profile.band(band_name)
    ref = locate_asset(item, band.lookup_keys, common_name=band.name)
    assert ref is not None, f"{band_name} not found in {name}"
    return ref.key, ref.href, ref.band_index, scale_offset(item, band, profile, ref)


# Earth Search v1 sentinel-2-c1-l2a: common-name asset keys, eo:bands named B04..., every
# reflectance asset declares scale 1e-4 / offset -0.1 and there is no
# `earthsearch:boa_offset_applied` flag: baseline 05.11 DNs carry the +1000, so -0.1 applies.
ES_C1_BANDS = {
    "coastal": ("coastal", "B01.tif"),
    "blue": ("blue", "B02.tif"),
    "green": ("green", "B03.tif"),
    "red": ("red", "B04.tif"),
    "rededge1": ("rededge1", "B05.tif"),
    "rededge2": ("rededge2", "B06.tif"),
    "rededge3": ("rededge3", "B07.tif"),
    "nir": ("nir", "B08.tif"),  # B08, broad NIR
    "nir08": ("nir08", "B8A.tif"),  # B8A, narrow NIR
    "swir16": ("swir16", "B11.tif"),
    "swir22": ("swir22", "B12.tif"),
}


def test_earth_search_c1_item_parses_with_its_time_collection_and_crs():
    item = parse_item(_load(ES_C1), catalog="https://earth-search.aws.element84.com/v1")
    assert item.id == "S2B_T38XNF_20250422T091553_L2A"
    assert item.collection == "sentinel-2-c1-l2a"
    assert profile_for(item.collection) is SENTINEL2_L2A
    assert item.datetime == datetime(2025, 4, 22, 9, 19, 42, tzinfo=UTC)
    assert item.updated == datetime(2025, 4, 22, 10, 45, 27, 591000, tzinfo=UTC)
    assert _item_epsg(dict(item.properties)) == 32638
    assert "earthsearch:boa_offset_applied" not in item.properties
    assert set(ES_C1_BANDS) == set(SENTINEL2_L2A.band_names)  # every profile band is covered


@pytest.mark.parametrize("band", sorted(ES_C1_BANDS))
def test_earth_search_c1_item_locates_every_band(band):
    key, filename = ES_C1_BANDS[band]
    assert _located(ES_C1, band) == (key, ES_C1_BASE + filename, 1, (1e-4, -0.1))


def test_earth_search_c1_dn_to_reflectance_removes_the_boa_offset_once():
    scale, offset = _located(ES_C1, "red")[3]
    assert 1500 * scale + offset == pytest.approx(0.05)


def test_earth_search_c1_item_qa_is_the_scl_asset_not_the_cloud_probabilities():
    item = _load(ES_C1)
    ref = locate_asset(item, SENTINEL2_L2A.qa.lookup_keys)
    assert (ref.key, ref.href, ref.band_index) == ("scl", ES_C1_BASE + "SCL.tif", 1)
    assert dict(ref.raster_band) == {"nodata": 0, "data_type": "uint8", "spatial_resolution": 20}
    assert SENTINEL2_L2A.qa.cube_variable == "scl"


def test_earth_search_c1_rgb_composites_never_stand_in_for_a_band():
    """`visual` (TCI) and `preview` list red/green/blue too; only the single-band assets count."""
    item = _load(ES_C1)
    without_keys = {k: v for k, v in item["assets"].items() if k not in ES_C1_BANDS}
    stripped = {**item, "assets": without_keys}
    assert locate_asset(stripped, ("B04",), common_name="red") is None


# Planetary Computer sentinel-1-rtc: `vv` / `vh` float32 gamma0 assets, no scale/offset,
# raster:bands nodata -32768 (the profile's 0.0 is only the fallback when a file has none).
def test_planetary_computer_s1_rtc_item_parses_with_its_time_collection_and_crs():
    item = parse_item(_load(PC_S1), catalog="https://planetarycomputer.microsoft.com/api/stac/v1")
    assert item.id == "S1A_IW_GRDH_1SDV_20240419T045904_20240419T045916_053498_067DF2_rtc"
    assert profile_for(item.collection) is SENTINEL1_RTC
    assert item.datetime == datetime(2024, 4, 19, 4, 59, 10, tzinfo=UTC)
    assert item.updated is None
    assert _item_epsg(dict(item.properties)) == 32633
    assert SENTINEL1_RTC.qa is None  # RTC has no QA layer


@pytest.mark.parametrize("band", ["vv", "vh"])
def test_planetary_computer_s1_rtc_item_locates_each_polarisation(band):
    key, href, index, scaling = _located(PC_S1, band)
    assert (key, href, index, scaling) == (band, f"{PC_S1_BASE}iw-{band}.rtc.tiff", 1, (1.0, 0.0))
    ref = locate_asset(_load(PC_S1), (band,))
    assert ref.raster_band["nodata"] == -32768 and ref.raster_band["data_type"] == "float32"


def test_planetary_computer_s1_rtc_tiles_and_previews_never_stand_in_for_vv():
    """`tilejson` / `rendered_preview` URLs mention vv and vh; only the `vv` asset is data."""
    item = _load(PC_S1)
    no_pol = {**item, "assets": {k: v for k, v in item["assets"].items() if k not in ("vv", "vh")}}
    assert locate_asset(no_pol, ("vv", "gamma0_vv"), common_name="vv") is None
