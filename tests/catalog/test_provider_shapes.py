"""Provider item shapes: which asset holds which band, and how it scales, per catalog.

Real item JSON (tests/data/realdata/stac-items, Apache-2.0, see its README): USGS
landsat-c2l2-sr, Planetary Computer landsat-c2-l2 and sentinel-2-l2a (with and without
raster:bands), Earth Search v0 sentinel-s2-l2a-cogs, AWS Sentinel-1 RTC. Earth Search v1,
HLS on CMR-STAC and the Planetary Computer hls2 collections have no real copy in the
repository; `_earth_search_v1` / `_hls_item` rebuild their documented shapes (asset keys,
`eo:bands` names and common names, `raster:bands`) from DESIGN.md and the CMR/PC notes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from geoproc.catalog.items import locate_asset, parse_item
from geoproc.catalog.sensors import profile_for
from geoproc.cube.assemble import scale_offset

ITEMS = Path(__file__).parents[1] / "data" / "realdata" / "stac-items"


def _load(name: str) -> dict:
    return json.loads((ITEMS / name).read_text())


def _where(item: dict, band_name: str):
    profile = profile_for(item["collection"])
    band = profile.band(band_name)
    ref = locate_asset(item, band.lookup_keys, common_name=band.name)
    if ref is None:
        return None
    return ref.key, ref.band_index, scale_offset(parse_item(item), band, profile, ref)


def _earth_search_v1(collection: str, *, applied: bool | None, baseline: str = "05.09") -> dict:
    def band(name, b, res=10):
        return {
            "href": f"https://sentinel-cogs.s3.us-west-2.amazonaws.com/x/{b}.tif",
            "eo:bands": [{"name": name, "common_name": name}],
            "raster:bands": [
                {"nodata": 0, "data_type": "uint16", "spatial_resolution": res,
                 "scale": 0.0001, "offset": -0.1}
            ],
            "roles": ["data", "reflectance"],
        }  # fmt: skip

    props = {"datetime": "2023-06-28T07:24:41.632Z", "s2:processing_baseline": baseline}
    if applied is not None:
        props["earthsearch:boa_offset_applied"] = applied
    return {
        "type": "Feature",
        "id": "S2A_39QTA_20230628_0_L2A",
        "collection": collection,
        "geometry": None,
        "properties": props,
        "assets": {
            "red": band("red", "B04"),
            "nir": band("nir", "B08"),
            "nir08": band("nir08", "B8A", 20),
            "rededge1": band("rededge1", "B05", 20),
            "scl": {"href": "https://sentinel-cogs.s3.us-west-2.amazonaws.com/x/SCL.tif",
                    "raster:bands": [{"nodata": 0, "data_type": "uint8"}], "roles": ["data"]},
            "visual": {"href": "https://sentinel-cogs.s3.us-west-2.amazonaws.com/x/TCI.tif",
                       "eo:bands": [{"name": "red", "common_name": "red"},
                                    {"name": "green", "common_name": "green"},
                                    {"name": "blue", "common_name": "blue"}],
                       "roles": ["visual"]},
            "red-jp2": {"href": "s3://sentinel-s2-l2a/x/R10m/B04.jp2",
                        "eo:bands": [{"name": "red", "common_name": "red"}], "roles": ["data"]},
        },
    }  # fmt: skip


def _hls_item(collection: str, platform: str) -> dict:
    """CMR-STAC (`HLSL30_2.0`, LP DAAC hrefs) or Planetary Computer (`hls2-l30`) HLS shape."""
    host = "https://data.lpdaac.earthdatacloud.nasa.gov/lp-prod-protected/HLSL30.020/g/g"
    common = {"B05": "nir08" if platform == "cmr" else "nir", "B04": "red", "B10": "lwir11"}
    assets = {
        k: {"href": f"{host}.{k}.tif", "eo:bands": [{"name": k, "common_name": c}]}
        for k, c in common.items()
    }
    assets["Fmask"] = {"href": f"{host}.Fmask.tif", "eo:bands": [{"name": "Fmask"}]}
    return {
        "type": "Feature", "id": "HLS.L30.T40QCM.2020116T063954.v2.0", "collection": collection,
        "geometry": None, "properties": {"datetime": "2020-04-25T06:39:54Z"}, "assets": assets,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("name", "band", "expected"),
    [
        # USGS landsat-c2l2-sr: common-name keys, no raster:bands -> the profile's scale
        ("odc-stac__LC08_L2SP_028030_20200114_20200824_02_T1_SR.json", "red",
         ("red", 1, (2.75e-5, -0.2))),
        ("odc-stac__LC08_L2SP_028030_20200114_20200824_02_T1_SR.json", "st_temperature", None),
        # Landsat 7: red is B3 (eo:bands name), still the `red` asset
        ("odc-stac__LE07_L2SP_044033_20210329_20210424_02_T1_SR.json", "red",
         ("red", 1, (2.75e-5, -0.2))),
        # Planetary Computer landsat-c2-l2: ST and its atmosphere layers, raster:bands scales
        ("stactools-landsat__LC09_L2SP_010065_20220129_02_T1.json", "st_temperature",
         ("lwir11", 1, (0.00341802, 149.0))),
        ("stactools-landsat__LC09_L2SP_010065_20220129_02_T1.json", "st_trad",
         ("trad", 1, (0.001, 0.0))),
        ("stactools-landsat__LC09_L2SP_010065_20220129_02_T1.json", "st_atran",
         ("atran", 1, (0.0001, 0.0))),
        ("stactools-landsat__LC08_L2SP_047027_20201204_02_T1.json", "nir08",
         ("nir08", 1, (2.75e-5, -0.2))),
        # Planetary Computer sentinel-2-l2a, baseline 02.12: no offset; B8A is nir08, not "rededge"
        ("odc-stac__S2B_MSIL2A_20190629T212529_R043_T06VVN_20201006T080531.json", "nir08",
         ("B8A", 1, (1e-4, 0.0))),
        ("odc-stac__S2B_MSIL2A_20190629T212529_R043_T06VVN_20201006T080531_raster_ext.json",
         "red", ("B04", 1, (1e-4, 0.0))),
        # Earth Search v0 (sentinel-s2-l2a-cogs): provider keys
        ("odc-stac__S2A_28QCH_20200714_0_L2A.json", "swir16", ("B11", 1, (1e-4, 0.0))),
        # AWS Sentinel-1 RTC: gamma0_vv
        ("stactools-s1__S1A_20200103_17RMJ_ASC.json", "vv", ("gamma0_vv", 1, (1.0, 0.0))),
    ],
)  # fmt: skip
def test_real_items_locate_each_band(name, band, expected):
    assert _where(_load(name), band) == expected


def test_real_items_locate_their_qa_layer():
    for name, key in [
        ("odc-stac__LC08_L2SP_028030_20200114_20200824_02_T1_SR.json", "qa_pixel"),
        ("stactools-landsat__LC09_L2SP_010065_20220129_02_T1.json", "qa_pixel"),
        ("odc-stac__S2B_MSIL2A_20190629T212529_R043_T06VVN_20201006T080531.json", "SCL"),
        ("odc-stac__S2A_28QCH_20200714_0_L2A.json", "SCL"),
    ]:
        item = _load(name)
        qa = profile_for(item["collection"]).qa
        assert locate_asset(item, qa.lookup_keys).key == key


@pytest.mark.parametrize("collection", ["sentinel-2-l2a", "sentinel-2-c1-l2a"])
def test_earth_search_v1_common_name_assets(collection):
    item = _earth_search_v1(collection, applied=False)
    assert _where(item, "red") == ("red", 1, (1e-4, -0.1))
    assert _where(item, "nir") == ("nir", 1, (1e-4, -0.1))  # B08, broad NIR
    assert _where(item, "nir08") == ("nir08", 1, (1e-4, -0.1))  # B8A, narrow NIR
    assert _where(item, "rededge1")[0] == "rededge1"
    assert _where(item, "blue") is None  # only in the RGB `visual` composite: never used
    assert locate_asset(item, profile_for(collection).qa.lookup_keys).key == "scl"


def test_earth_search_offset_applied_is_not_applied_twice():
    applied = _earth_search_v1("sentinel-2-l2a", applied=True)
    assert _where(applied, "red") == ("red", 1, (1e-4, 0.0))
    # DN 1500 of a harmonised granule is 0.15; of an unharmonised one (flag false) 0.05
    scale, offset = _where(applied, "red")[2]
    assert 1500 * scale + offset == pytest.approx(0.15)
    scale, offset = _where(_earth_search_v1("sentinel-2-l2a", applied=False), "red")[2]
    assert 1500 * scale + offset == pytest.approx(0.05)


def test_hls_cmr_and_planetary_computer_shapes():
    cmr = _hls_item("HLSL30_2.0", "cmr")
    pc = _hls_item("hls2-l30", "pc")
    for item in (cmr, pc):
        # L30 B05 is the narrow NIR (nir08) even where the catalog calls it "nir"
        assert _where(item, "nir08") == ("B05", 1, (1e-4, 0.0))
        assert _where(item, "lwir11") == ("B10", 1, (0.01, 273.15))
        assert locate_asset(item, profile_for(item["collection"]).qa.lookup_keys).key == "Fmask"


def test_same_id_rule_newest_updated_wins_and_ties_are_refused():
    from geoproc.catalog.items import resolve_same_id
    from geoproc.errors import CatalogError

    base = _load("stactools-landsat__LC09_L2SP_010065_20220129_02_T1.json")
    a = parse_item(base, source="a.json")
    assert resolve_same_id(a, parse_item(json.loads(json.dumps(base)), source="b.json")) is a
    newer = json.loads(json.dumps(base))
    newer["properties"]["updated"] = "2030-01-01T00:00:00Z"
    newer["assets"]["red"]["href"] = "https://example.org/reprocessed.tif"
    b = parse_item(newer, source="b.json")
    assert resolve_same_id(a, b) is b and resolve_same_id(b, a) is b
    impostor = json.loads(json.dumps(base))
    impostor["assets"]["red"]["href"] = "https://example.org/impostor.tif"
    with pytest.raises(CatalogError, match=r"a\.json.*c\.json"):
        resolve_same_id(a, parse_item(impostor, source="c.json"))


def test_parsed_item_is_frozen_and_reads_like_the_json():
    item = parse_item(_load("stactools-s1__S1A_20200103_17RMJ_ASC.json"), catalog="/x")
    assert item.id == item["id"] == "S1A_20200103_17RMJ_ASC"
    assert item.datetime.isoformat() == "2020-01-03T23:36:21+00:00"
    assert item.catalog == "/x" and item.get("collection") == "sentinel1-rtc-aws"
    with pytest.raises(TypeError):
        item.raw["id"] = "other"  # the JSON view is read-only
    with pytest.raises(AttributeError):
        item.id = "other"


def test_unparseable_items_are_refused_with_the_source_named():
    from geoproc.errors import CatalogError

    with pytest.raises(CatalogError, match="f.json"):
        parse_item({"id": "x", "properties": {"datetime": "yesterday"}}, source="f.json")
    with pytest.raises(CatalogError, match="no string id"):
        parse_item({"id": 7, "properties": {}}, source="f.json")


def test_parsed_items_travel_to_workers_and_into_pystac():
    import pickle

    import pystac

    item = parse_item(_load("stactools-landsat__LC09_L2SP_010065_20220129_02_T1.json"),
                      catalog="https://planetarycomputer.microsoft.com/api/stac/v1", source="p1")  # fmt: skip
    back = pickle.loads(pickle.dumps(item))  # Dask worker processes
    assert (back.id, back.catalog, back.source) == (item.id, item.catalog, item.source)
    assert back.fingerprint == item.fingerprint
    assert pystac.Item.from_dict(item).id == item.id  # copies, never edits, the view
    assert item.raw["assets"]["red"]["href"].endswith("SR_B4.TIF")


def test_usgs_2020_st_item_keys_with_file_suffixes():
    """The real 2020 USGS landsat-c2l2-st item of the Greenland scene names assets `ST_TRAD.TIF`."""
    path = (
        ITEMS.parent
        / "landsat-c2l2-greenland"
        / "LC08_L2SP_005009_20150710_20200908_02_T2_ST_stac.json"
    )
    item = json.loads(path.read_text())
    assert _where(item, "st_trad")[0] == "ST_TRAD.TIF"
    assert _where(item, "st_temperature")[:2] == ("ST_B10.TIF", 1)
    assert _where(item, "st_emis")[2] == (0.0001, 0.0)
    assert locate_asset(item, profile_for("landsat-c2l2-st").qa.lookup_keys).key == "QA_PIXEL.TIF"
