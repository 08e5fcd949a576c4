"""The sample archive is physically plausible: spectra, phenology, clouds vs Fmask, SAR, thermal.

Every check compares the generated bands with the ground truth written beside them.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import rasterio

from geoproc.catalog.sensors import FMASK_AEROSOL_SHIFT, FMASK_BITS, HLS_L30
from geoproc.dev.sample.scene import BROADLEAF, CONIFER, RIVER, URBAN, WATER
from geoproc.dev.sample.thermal import invert_lst


def read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1) if src.count == 1 else src.read()


def items_of(archive: Path, collection: str) -> list[dict]:
    return [
        json.loads(p.read_text()) for p in sorted((archive / "items" / collection).glob("*.json"))
    ]


def granule_of(item: dict) -> str:
    p = item["properties"]
    return f"{p['mgrs:utm_zone']}{p['mgrs:latitude_band']}{p['mgrs:grid_square']}"


def asset(archive: Path, item: dict, key: str) -> np.ndarray:
    return read(archive / "items" / item["collection"] / item["assets"][key]["href"])


@pytest.fixture(scope="module")
def ndvi_by_class_month(sample_archive_small):
    """Median NDVI (B8A, B04) of clear, snow-free pixels per land-cover class and month (S30)."""
    archive = sample_archive_small
    values = defaultdict(list)
    for item in items_of(archive, "HLSS30_2.0"):
        if item["properties"]["eo:cloud_cover"] > 60:
            continue
        clouds = read(archive / "truth" / "clouds" / f"{item['id']}.tif")
        lc = read(archive / "truth" / "landcover" / f"{granule_of(item)}.tif")
        flood = read(
            archive
            / "truth"
            / "flood"
            / granule_of(item)
            / f"{item['properties']['datetime'][:10]}.tif"
        )
        red = asset(archive, item, "B04") * 1e-4
        nir = asset(archive, item, "B8A") * 1e-4
        snow = (asset(archive, item, "Fmask") >> FMASK_BITS["snow_ice"]) & 1
        clear = (clouds == 0) & (flood != 2) & (snow == 0)
        if snow[clouds == 0].mean() > 0.05:  # a snow day: canopies are partly white, skip
            continue
        ndvi = (nir - red) / (nir + red)
        month = int(item["properties"]["datetime"][5:7])
        for cls in (WATER, BROADLEAF, CONIFER, URBAN):
            sel = clear & (lc == cls)
            if sel.sum() > 20:
                values[(cls, month)].append(np.median(ndvi[sel]))
    return {k: float(np.median(v)) for k, v in values.items()}


def test_broadleaf_greens_up_in_spring_and_drops_leaves_in_autumn(ndvi_by_class_month):
    summer = [
        ndvi_by_class_month[(BROADLEAF, m)]
        for m in (6, 7, 8)
        if (BROADLEAF, m) in ndvi_by_class_month
    ]
    winter = [
        ndvi_by_class_month[(BROADLEAF, m)]
        for m in (1, 2, 12)
        if (BROADLEAF, m) in ndvi_by_class_month
    ]
    assert summer and winter
    assert min(summer) > 0.7
    assert max(winter) < 0.5
    if (BROADLEAF, 3) in ndvi_by_class_month and (BROADLEAF, 5) in ndvi_by_class_month:
        assert ndvi_by_class_month[(BROADLEAF, 5)] > ndvi_by_class_month[(BROADLEAF, 3)] + 0.2


def test_conifers_stay_green_water_is_negative_urban_is_low(ndvi_by_class_month):
    conifer = [v for (c, _), v in ndvi_by_class_month.items() if c == CONIFER]
    assert len(conifer) >= 6
    assert min(conifer) > 0.65 and max(conifer) - min(conifer) < 0.15
    water = [v for (c, _), v in ndvi_by_class_month.items() if c == WATER]
    assert water and max(water) < 0
    urban = [v for (c, _), v in ndvi_by_class_month.items() if c == URBAN]
    assert urban and 0.05 < np.median(urban) < 0.4


def test_fmask_agrees_with_cloud_truth_but_misses_a_few_percent(sample_archive_small):
    archive = sample_archive_small
    agree = total = truth_cloud = missed = 0
    ring = levels_seen = 0
    water_agree = water_total = 0
    for collection in ("HLSS30_2.0", "HLSL30_2.0"):
        for item in items_of(archive, collection)[::3]:
            qa = asset(archive, item, "Fmask")
            truth = read(archive / "truth" / "clouds" / f"{item['id']}.tif")
            valid = qa != 255
            assert np.array_equal(valid, truth != 255)
            cloud_bit = (qa >> FMASK_BITS["cloud"]) & 1
            shadow_bit = (qa >> FMASK_BITS["cloud_shadow"]) & 1
            flagged = (cloud_bit | shadow_bit).astype(bool)
            agree += np.count_nonzero((flagged == (truth > 0)) & valid)
            total += np.count_nonzero(valid)
            truth_cloud += np.count_nonzero(truth == 1)
            missed += np.count_nonzero((truth == 1) & (cloud_bit == 0))
            ring += np.count_nonzero((qa >> FMASK_BITS["adjacent_cloud"]) & 1 & valid)
            levels_seen |= int(
                np.bitwise_or.reduce((1 << (qa[valid] >> FMASK_AEROSOL_SHIFT)).ravel())
            )
            lc = read(archive / "truth" / "landcover" / f"{granule_of(item)}.tif")
            water_bit = ((qa >> FMASK_BITS["water"]) & 1).astype(bool)
            lake = valid & (cloud_bit == 0) & ((lc == WATER) | (lc == RIVER))
            water_agree += np.count_nonzero(water_bit & lake)
            water_total += np.count_nonzero(lake)
    assert agree / total > 0.95
    assert truth_cloud > 10_000
    assert 0.005 < missed / truth_cloud < 0.05
    assert ring > 0
    assert levels_seen & 0b0010 and levels_seen & 0b0100  # aerosol low and moderate both occur
    assert water_agree == water_total > 0


def test_sar_separates_water_from_land_and_vh_sits_below_vv(sample_archive_small):
    archive = sample_archive_small
    diffs, pol_gap, enl = [], [], []
    for item in items_of(archive, "sentinel-1-rtc")[::4]:
        vv, vh = asset(archive, item, "vv"), asset(archive, item, "vh")
        lc = read(archive / "truth" / "landcover" / f"{granule_of(item)}.tif")
        flood = read(
            archive
            / "truth"
            / "flood"
            / granule_of(item)
            / f"{item['properties']['datetime'][:10]}.tif"
        )
        valid = (vv > 0) & (vh > 0)
        water = valid & np.isin(lc, [WATER, RIVER])
        if water.sum() < 50:
            continue
        land = valid & (flood == 0) & ~np.isin(lc, [WATER, RIVER])
        vv_db = 10 * np.log10(np.where(valid, vv, 1))
        diffs.append(np.median(vv_db[land]) - np.median(vv_db[water]))
        pol_gap.append(np.median(vv_db[land]) - np.median(10 * np.log10(vh[land])))
        lake = vv[water]
        enl.append(lake.mean() ** 2 / lake.var())
    assert np.median(diffs) > 8
    assert 5.5 < np.median(pol_gap) < 8.5
    assert 3.0 < np.median(enl) < 6.0  # gamma speckle with ENL ~4.4 (plus a little texture)


def test_flood_shows_in_truth_sar_and_optical(sample_archive_small):
    archive = sample_archive_small
    s1 = items_of(archive, "sentinel-1-rtc")
    in_flood = [
        it for it in s1 if "2024-05-20" <= it["properties"]["datetime"][:10] <= "2024-05-30"
    ]
    assert in_flood
    item = in_flood[0]
    g, day = granule_of(item), item["properties"]["datetime"][:10]
    flood = read(archive / "truth" / "flood" / g / f"{day}.tif")
    assert np.count_nonzero(flood == 2) > 200
    index = json.loads((archive / "truth" / "index.json").read_text())
    april = next(d for d in index["layers"]["flood"]["dates"] if d.startswith("2024-04"))
    dry = read(archive / "truth" / "flood" / g / f"{april}.tif")
    vv = asset(archive, item, "vv")
    ok = vv > 0
    assert np.median(10 * np.log10(vv[(flood == 2) & ok])) < -17
    before = [
        it
        for it in s1
        if granule_of(it) == g and "2024-04-20" <= it["properties"]["datetime"][:10] <= "2024-05-10"
    ]
    vv_before = asset(archive, before[0], "vv")
    ok2 = vv_before > 0
    assert np.median(10 * np.log10(vv_before[(flood == 2) & ok2])) > -14
    assert np.count_nonzero(dry == 2) == 0
    assert np.array_equal(dry == 1, flood == 1)  # permanent water does not move
    # optical: flood pixels are water (NDVI < 0) where the truth sees them clear
    ndvis = []
    for it in items_of(archive, "HLSS30_2.0") + items_of(archive, "HLSL30_2.0"):
        day = it["properties"]["datetime"][:10]
        if not "2024-05-15" <= day <= "2024-06-05":
            continue
        fl = read(archive / "truth" / "flood" / granule_of(it) / f"{day}.tif")
        clear = (read(archive / "truth" / "clouds" / f"{it['id']}.tif") == 0) & (fl == 2)
        nir_key = "B8A" if it["collection"] == "HLSS30_2.0" else "B05"
        red, nir = asset(archive, it, "B04") * 1e-4, asset(archive, it, nir_key) * 1e-4
        if clear.sum() > 20:
            ndvis.append(np.median(((nir - red) / (nir + red))[clear]))
    assert ndvis and max(ndvis) < 0


def test_brightness_temperature_inverts_to_truth_lst(sample_archive_small):
    """Invert the RTE with truth emissivity and the recorded atmosphere: truth LST within 0.05 K."""
    archive = sample_archive_small
    checked = 0
    lst_by_month = defaultdict(list)
    for item in items_of(archive, "HLSL30_2.0")[::2]:
        atm = item["properties"]["geoproc:atmosphere"]
        truth_lst = read(archive / "truth" / "lst" / f"{item['id']}.tif")
        emis = read(archive / "truth" / "emissivity" / f"{item['id']}.tif")
        clear = read(archive / "truth" / "clouds" / f"{item['id']}.tif") == 0
        if clear.sum() < 100:
            continue
        for i, band in enumerate(("lwir11", "lwir12")):
            key = HLS_L30.band(band).asset
            dn = asset(archive, item, key)
            bt = dn * HLS_L30.band(band).scale + HLS_L30.band(band).offset
            lst = invert_lst(bt[clear], emis[i][clear], atm, band)
            assert np.max(np.abs(lst - truth_lst[clear])) < 0.05
            checked += 1
        lst_by_month[int(item["properties"]["datetime"][5:7])].append(np.median(truth_lst[clear]))
    assert checked >= 10
    summer = np.median(sum((lst_by_month[m] for m in (6, 7, 8)), []))
    winter = np.median(sum((lst_by_month[m] for m in (12, 1, 2)), []))
    assert 285 < summer < 310 and 260 < winter < 282


def test_emissivity_follows_cover_type(sample_archive_small):
    archive = sample_archive_small
    july = [
        it for it in items_of(archive, "HLSL30_2.0") if it["properties"]["datetime"][5:7] == "07"
    ]
    lc_of = {
        g: read(archive / "truth" / "landcover" / f"{g}.tif")
        for g in {granule_of(it) for it in july}
    }
    item = max(july, key=lambda it: np.count_nonzero(lc_of[granule_of(it)] == WATER))
    emis = read(archive / "truth" / "emissivity" / f"{item['id']}.tif")[0]
    lc = lc_of[granule_of(item)]
    assert np.count_nonzero(lc == WATER) > 100
    assert abs(np.median(emis[lc == WATER]) - 0.991) < 0.002
    assert abs(np.median(emis[lc == URBAN]) - 0.955) < 0.01
    assert np.median(emis[lc == BROADLEAF]) > 0.983
    assert 0.0005 < np.std(emis[lc == WATER]) < 0.005  # small realistic noise


def test_canopy_truth_is_consistent(sample_archive_small):
    archive = sample_archive_small
    for path in sorted((archive / "truth" / "landcover").glob("*.tif")):
        lc = read(path)
        cls = read(archive / "truth" / "canopy_class" / path.name)
        cover = read(archive / "truth" / "canopy_cover" / path.name)
        assert np.array_equal(cls == 1, lc == BROADLEAF) and np.array_equal(cls == 2, lc == CONIFER)
        assert np.all(cover[cls == 0] == 0)
        assert 45 <= cover[cls > 0].min() and cover[cls > 0].max() <= 98
        assert np.count_nonzero(cls == 1) > 100 and np.count_nonzero(cls == 2) > 100
