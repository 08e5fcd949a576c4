"""The sample archive looks like the real archives: layout, STAC metadata, grids, COGs, revisit.

Uses the session `sample_archive_small` fixture (tests/conftest.py), generated once.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import rasterio
from pyproj import Transformer
from shapely.geometry import box, shape
from shapely.ops import transform as shp_transform

from geoproc.catalog.sensors import HLS_L30, HLS_S30, SENTINEL1_RTC

S30_ID = re.compile(r"^HLS\.S30\.T(\d{2}[C-X][A-Z]{2})\.(\d{4})(\d{3})T(\d{6})\.v2\.0$")
L30_ID = re.compile(r"^HLS\.L30\.T(\d{2}[C-X][A-Z]{2})\.(\d{4})(\d{3})T(\d{6})\.v2\.0$")
S1_ID = re.compile(r"^S1A_(\d{8})_(\d{2}[C-X][A-Z]{2})_(ASC|DSC)$")


def load_items(archive: Path, collection: str) -> list[dict]:
    return [
        json.loads(p.read_text()) for p in sorted((archive / "items" / collection).glob("*.json"))
    ]


def test_aoi_touches_one_tile_per_zone_and_granules_cover_every_tile(sample_archive_small):
    aoi_fc = json.loads((sample_archive_small / "aoi.geojson").read_text())
    assert aoi_fc["type"] == "FeatureCollection" and len(aoi_fc["features"]) == 1
    feature = aoi_fc["features"][0]
    props = feature["properties"]
    assert (
        props["resolution"] == 30
        and props["start"] == "2024-01-01"
        and props["end"] == "2024-12-31"
    )
    assert props["size"] == "small" and props["seed"] == 0
    aoi = shape(feature["geometry"])
    assert aoi.bounds[0] < 12.0 < aoi.bounds[2]  # crosses the zone 32/33 boundary

    tile_m = props["tile_size_px"] * 30.0
    items = load_items(sample_archive_small, "HLSS30_2.0") + load_items(
        sample_archive_small, "HLSL30_2.0"
    )
    grids = {(it["properties"]["proj:epsg"], tuple(it["properties"]["proj:bbox"])) for it in items}
    zones = {epsg for epsg, _ in grids}
    assert zones == {32632, 32633}
    for epsg in zones:
        project = Transformer.from_crs(4326, epsg, always_xy=True).transform
        aoi_utm = shp_transform(project, aoi.segmentize(0.001))
        x0, y0, x1, y1 = aoi_utm.bounds
        tiles = [
            box(i * tile_m, j * tile_m, (i + 1) * tile_m, (j + 1) * tile_m)
            for i in range(math.floor(x0 / tile_m), math.floor(x1 / tile_m) + 1)
            for j in range(math.floor(y0 / tile_m), math.floor(y1 / tile_m) + 1)
        ]
        tiles = [t for t in tiles if t.intersects(aoi_utm)]
        assert tiles
        granules = [box(*b) for e, b in grids if e == epsg]
        assert len(granules) >= 2
        union = granules[0]
        for g in granules[1:]:
            union = union.union(g)
        for t in tiles:
            assert union.contains(t), f"processing tile {t.bounds} in EPSG:{epsg} not covered"
        # adjacent granules of one zone overlap (same-day duplicates)
        assert any(
            a.intersection(b).area > 0 for i, a in enumerate(granules) for b in granules[i + 1 :]
        )


def test_item_ids_times_and_revisit_look_real(sample_archive_small):
    expect = {"HLSS30_2.0": (S30_ID, 5, 9 + 42 / 60), "HLSL30_2.0": (L30_ID, 8, 9 + 22 / 60)}
    for collection, (pattern, revisit, utc_hour) in expect.items():
        items = load_items(sample_archive_small, collection)
        days = set()
        for it in items:
            m = pattern.match(it["id"])
            assert m, it["id"]
            t = dt.datetime.fromisoformat(it["properties"]["datetime"].replace("Z", "+00:00"))
            assert m.group(3) == f"{t.timetuple().tm_yday:03d}" and m.group(4) == t.strftime(
                "%H%M%S"
            )
            assert (
                abs(t.hour + t.minute / 60 - utc_hour) < 0.1
            )  # local solar ~10:30 / ~10:10 at 12 E
            assert t.year == 2024
            days.add(t.date())
        gaps = np.diff(sorted(d.toordinal() for d in days))
        assert np.median(gaps) == revisit
    s1 = load_items(sample_archive_small, "sentinel-1-rtc")
    days = set()
    for it in s1:
        m = S1_ID.match(it["id"])
        assert m, it["id"]
        hour = int(it["properties"]["datetime"][11:13])
        state = it["properties"]["sat:orbit_state"]
        assert (state, m.group(3)) in {("ascending", "ASC"), ("descending", "DSC")}
        assert hour == (17 if state == "ascending" else 5)
        days.add(it["properties"]["datetime"][:10])
    gaps = np.diff(sorted(dt.date.fromisoformat(d).toordinal() for d in days))
    assert 6 <= np.median(gaps) <= 12


def test_same_day_duplicates_carry_identical_pixels_in_the_overlap(sample_archive_small):
    items = load_items(sample_archive_small, "HLSS30_2.0")
    by_day = defaultdict(list)
    for it in items:
        by_day[(it["properties"]["datetime"], it["properties"]["proj:epsg"])].append(it)
    pairs = [v for v in by_day.values() if len(v) >= 2]
    assert len(pairs) > 50
    a, b = pairs[10][:2]
    arrays = []
    for it in (a, b):
        path = sample_archive_small / "items" / "HLSS30_2.0" / it["assets"]["B04"]["href"]
        with rasterio.open(path) as src:
            arrays.append((src.read(1), src.transform))
    (da, ta), (db, tb) = arrays
    off_cols = int(round((tb.c - ta.c) / 30.0))
    off_rows = int(round((ta.f - tb.f) / 30.0))
    assert off_cols != 0 or off_rows != 0
    ov_a = da[max(off_rows, 0) :, max(off_cols, 0) :]
    ov_b = db[max(-off_rows, 0) :, max(-off_cols, 0) :]
    h, w = min(ov_a.shape[0], ov_b.shape[0]), min(ov_a.shape[1], ov_b.shape[1])
    assert h * w > 1000
    np.testing.assert_array_equal(ov_a[:h, :w], ov_b[:h, :w])


@pytest.mark.parametrize("profile", [HLS_S30, HLS_L30, SENTINEL1_RTC], ids=lambda p: p.collection)
def test_assets_match_item_metadata_and_sensor_profile(sample_archive_small, profile):
    from rio_cogeo.cogeo import cog_validate

    items = load_items(sample_archive_small, profile.collection)
    item = items[len(items) // 2]
    props = item["properties"]
    expected_keys = {b.asset for b in profile.bands} | ({profile.qa.asset} if profile.qa else set())
    assert set(item["assets"]) == expected_keys
    for band in profile.bands:
        asset = item["assets"][band.asset]
        rb = asset["raster:bands"][0]
        assert (rb["data_type"], rb["nodata"], rb["scale"], rb["offset"]) == (
            band.dtype,
            band.nodata,
            band.scale,
            band.offset,
        )
        if profile.family == "optical":
            common = asset["eo:bands"][0]["common_name"]
            assert common == ("rededge" if band.name.startswith("rededge") else band.name)
            assert asset["eo:bands"][0]["name"] == band.original_name
        path = (sample_archive_small / "items" / profile.collection / asset["href"]).resolve()
        assert (
            path
            == sample_archive_small.resolve()
            / "data"
            / profile.collection
            / item["id"]
            / f"{item['id']}.{band.asset}.tif"
        )
        valid, errors, _ = cog_validate(str(path))
        assert valid, errors
        with rasterio.open(path) as src:
            assert src.crs.to_epsg() == props["proj:epsg"]
            assert list(src.transform)[:6] == props["proj:transform"]
            assert [src.height, src.width] == props["proj:shape"]
            assert list(src.bounds) == props["proj:bbox"]
            assert src.dtypes[0] == band.dtype and src.nodata == band.nodata
            data = src.read(1)
    if profile.qa is not None:
        with rasterio.open(
            sample_archive_small / "items" / profile.collection / item["assets"]["Fmask"]["href"]
        ) as src:
            assert src.dtypes[0] == "uint8" and src.nodata == 255
    assert np.count_nonzero(data != band.nodata) > 0


def test_items_and_collections_validate_against_stac_schemas(sample_archive_small):
    from geoproc.stac_schemas import validate_stac

    for collection in ("HLSS30_2.0", "HLSL30_2.0", "sentinel-1-rtc"):
        coll = json.loads((sample_archive_small / "collections" / f"{collection}.json").read_text())
        validate_stac(coll)
        items = load_items(sample_archive_small, collection)
        for item in items[:: max(1, len(items) // 4)]:
            used = validate_stac(item)
            assert any("projection" in u for u in used) and any("raster" in u for u in used)


def test_atmosphere_is_recorded_and_physical(sample_archive_small):
    items = load_items(sample_archive_small, "HLSL30_2.0")
    wv_by_month = defaultdict(list)
    for it in items:
        atm = it["properties"]["geoproc:atmosphere"]
        assert atm["source"] == "synthetic reanalysis"
        for band in ("lwir11", "lwir12"):
            a = atm[band]
            assert 0.4 < a["transmittance"] < 1.0
            assert 0 < a["upwelling_radiance"] < a["downwelling_radiance"] < 6.0
        assert atm["lwir12"]["transmittance"] < atm["lwir11"]["transmittance"]
        wv_by_month[int(it["properties"]["datetime"][5:7])].append(atm["water_vapour"])
    summer = np.median(wv_by_month[7] + wv_by_month[8])
    winter = np.median(wv_by_month[1] + wv_by_month[12])
    assert summer > winter + 0.7


def test_create_archive_reuses_a_complete_archive_and_refuses_another_seed(sample_archive_small):
    from geoproc.dev.sample import create_archive
    from geoproc.errors import StoreError

    marker = sample_archive_small / ".complete.json"
    before = marker.stat().st_mtime_ns
    assert create_archive(sample_archive_small, seed=0, size="small") == sample_archive_small
    assert marker.stat().st_mtime_ns == before
    with pytest.raises(StoreError, match="--out"):
        create_archive(sample_archive_small, seed=1, size="small")


def test_bad_arguments_are_usage_errors(tmp_path):
    from geoproc.dev.sample import create_archive
    from geoproc.errors import UnknownNameError, UsageError

    with pytest.raises(UnknownNameError, match="--size"):
        create_archive(tmp_path / "x", size="huge")
    with pytest.raises(UsageError, match="--seed"):
        create_archive(tmp_path / "x", seed=-1)


def test_cli_info_and_usage_errors(sample_archive_small, capsys):
    from geoproc.cli import main

    assert main(["sample", "info", str(sample_archive_small), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    n_items = {
        c: len(list((sample_archive_small / "items" / c).glob("*.json")))
        for c in info["collections"]
    }
    assert {c: v["items"] for c, v in info["collections"].items()} == n_items
    assert info["collections"]["HLSS30_2.0"]["first"].startswith("2024-01")
    assert main(["sample", "info", str(sample_archive_small / "nope")]) == 2
    with pytest.raises(SystemExit) as exc:
        main(["sample", "create", "--out", "x", "--size", "huge"])
    assert exc.value.code == 2
