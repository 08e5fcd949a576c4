"""Residual-cloud screen and near-cloud uncertainty: hand-computed cases, the product, real data."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import rasterio
import xarray as xr
from scipy import ndimage

from geoproc.catalog.sensors import FMASK_BITS, profile_for
from geoproc.errors import UsageError
from geoproc.products import lst
from geoproc.products.lst.cloud_screen import (
    CloudScreen,
    cloud_distance,
    near_cloud_sigma,
    residual_cloud,
    spectrally_cloudlike,
)
from geoproc.products.lst.landsat_c2 import load_landsat_c2_l2
from geoproc.products.lst.score import score

SCREEN = CloudScreen(near_cloud_sigma_k=5.0)
NEAR = {"near_cloud_sigma_k": 5.0}  # the USGS ST_QA-like near-cloud term, off by default
HAZE = {"blue": 0.20, "green": 0.19, "red": 0.18, "nir08": 0.25, "swir16": 0.20, "swir22": 0.15}
"""A thin cloud: HOT = 0.20 - 0.09 - 0.08 = 0.03 > 0, whiteness 0.105, NIR/SWIR1 1.25."""
FOREST = {"blue": 0.03, "green": 0.06, "red": 0.04, "nir08": 0.30, "swir16": 0.14, "swir22": 0.06}
"""Dark canopy: HOT = 0.03 - 0.02 - 0.08 = -0.07, so never cloud-like."""


def _pixel(values: dict, bt: float) -> bool:
    arrays = {k: np.array([v]) for k, v in values.items()}
    return bool(spectrally_cloudlike(np.array([bt]), screen=SCREEN, **arrays)[0])


def test_fmask_spectral_tests_on_hand_computed_pixels():
    assert _pixel(HAZE, 280.0)
    assert not _pixel(FOREST, 280.0)
    assert not _pixel(HAZE, 301.0)  # basic test: BT below 27 degC
    assert not _pixel({**HAZE, "swir22": 0.02}, 280.0)  # basic test: SWIR2 > 0.03
    # whiteness: blue 0.40, green 0.19, red 0.18 -> mean 0.2567, sum |dev| / mean = 1.117
    assert not _pixel({**HAZE, "blue": 0.40}, 280.0)
    # NIR / SWIR1 = 0.14 / 0.20 = 0.7 < 0.75: bright rock or soil, not cloud
    assert not _pixel({**HAZE, "nir08": 0.14}, 280.0)
    # a missing band skips its test only
    assert _pixel({**HAZE, "swir22": np.nan}, 280.0)


def _scene(ny=20, nx=20):
    """Clear land at 290 K (so T_low = 290 K) with a few special pixels."""
    bands = {k: np.full((ny, nx), v) for k, v in FOREST.items()}
    bt = np.full((ny, nx), 290.0)
    land = np.ones((ny, nx), bool)
    for (y, x), temp in {(1, 1): 285.0, (1, 2): 286.5, (2, 1): 280.0, (2, 2): 280.0}.items():
        bt[y, x] = temp
        if (y, x) != (2, 1):
            for k, v in HAZE.items():
                bands[k][y, x] = v
    land[2, 2] = False  # hazy and cold, but water or snow: never screened
    return bt, bands, land


def _screen(bt, bands, land, screen=SCREEN):
    def da(a):
        return xr.DataArray(a, dims=("y", "x"))

    out = residual_cloud(
        da(bt), land=da(land), screen=screen, **{k: da(v) for k, v in bands.items()}
    )
    return out.values


def test_residual_cloud_needs_cloud_spectrum_and_bt_below_t_low_minus_margin():
    bt, bands, land = _scene()
    found = _screen(bt, bands, land)
    # (1,1): hazy, 285 < 290 - 4; (1,2): hazy but 286.5 > 286; (2,1): 280 K forest; (2,2) water
    assert np.argwhere(found).tolist() == [[1, 1]]
    wider = _screen(bt, bands, land, CloudScreen(margin_k=3.0))
    assert np.argwhere(wider).tolist() == [[1, 1], [1, 2]]


def test_t_low_is_the_percentile_of_clear_land_only():
    bt, bands, land = _scene()
    # make 30 % of the clear land 10 K colder: the 17.5th percentile becomes 280 K and
    # the hazy 285 K pixel is no longer colder than T_low - 4
    bt[10:16, :] = 280.0
    assert not _screen(bt, bands, land).any()
    # cold water does not pull T_low down
    bt, bands, land = _scene()
    bt[10:16, :] = 270.0
    land[10:16, :] = False
    assert np.argwhere(_screen(bt, bands, land)).tolist() == [[1, 1]]


def test_scene_without_enough_clear_land_is_not_screened():
    bt, bands, land = _scene()
    land[:] = False
    land[1, 1] = True  # e.g. an ice sheet with one hazy rock pixel
    assert not _screen(bt, bands, land).any()


def test_cloud_distance_in_metres_ignores_fill_and_is_infinite_without_cloud():
    fm = np.zeros((2, 5, 5), np.uint8)
    fm[0, 2, 2] = 1 << FMASK_BITS["cloud"]
    fm[0, 0, 4] = 255  # fill is not cloud
    fm[1, 0, 0] = 1 << FMASK_BITS["water"]
    d = cloud_distance(xr.DataArray(fm, dims=("time", "y", "x")), pixel_size_m=30.0).values
    assert d[0, 2, 2] == 0.0
    assert d[0, 2, 4] == pytest.approx(60.0)
    assert d[0, 0, 0] == pytest.approx(30.0 * math.sqrt(8))
    assert d[0, 0, 4] == pytest.approx(30.0 * math.sqrt(8))
    assert np.isinf(d[1]).all()


def test_near_cloud_sigma_decays_exponentially():
    d = xr.DataArray([0.0, 3000.0, np.inf])
    np.testing.assert_allclose(near_cloud_sigma(d, screen=SCREEN).values, [5.0, 5.0 / math.e, 0])


@pytest.mark.parametrize(
    "option", [{"percentile": 60}, {"margin_k": -1}, {"near_cloud_length_m": 0}, {"nope": 1}, 3]
)
def test_bad_screen_options_raise_usage_error(option):
    ds = _product_scene()
    with pytest.raises(UsageError, match="cloud_screen|percentile|must be"):
        lst.run(ds, cloud_screen=option)


def _product_scene():
    """A 2-step 30 m scene: clear land at 290 K, a thin cloud Fmask missed, a flagged cloud."""
    ny, nx = 24, 24
    bt, bands, land = _scene(ny, nx)
    fmask = np.zeros((ny, nx), np.uint8)
    fmask[2, 2] = 1 << FMASK_BITS["water"]  # hazy and cold, but water: never screened
    clear_step = fmask.copy()
    fmask[20, 20] = 1 << FMASK_BITS["cloud"]
    bt[20, 20] = np.nan  # the cube masks what Fmask flags
    dims = ("time", "y", "x")
    data = {k: (dims, np.stack([v, v])) for k, v in bands.items()}
    data["lwir11"] = (dims, np.stack([bt, bt]))
    data["fmask"] = (dims, np.stack([fmask, clear_step]))
    ds = xr.Dataset(
        data,
        coords={
            "time": np.array(["2024-06-01", "2024-06-17"], dtype="datetime64[ns]"),
            "y": 5_000_000.0 - 30.0 * np.arange(ny),
            "x": 500_000.0 + 30.0 * np.arange(nx),
        },
    )
    for key, value in (("transmittance", 0.9), ("upwelling", 0.6), ("downwelling", 1.0)):
        ds[f"atmos_{key}_lwir11"] = ("time", [value, value])
    return ds


def test_product_masks_the_missed_cloud_flags_it_and_widens_uncertainty_near_clouds():
    ds = _product_scene()
    out = lst.run(ds, cloud_screen=NEAR)
    off = lst.run(ds, cloud_screen=False)
    qa = out.lst_qa.values
    assert out.lst_qa.dtype == np.uint16
    # the missed cloud: nodata, masked + residual_cloud; the screen off keeps a (cold) value
    assert np.isnan(out.lst.values[:, 1, 1]).all() and np.isfinite(off.lst.values[:, 1, 1]).all()
    assert (qa[:, 1, 1] == lst.QA_MASKED | lst.QA_RESIDUAL_CLOUD).all()
    assert int(((qa & lst.QA_RESIDUAL_CLOUD) > 0).sum()) == 2
    # everything else is untouched: same LST, same coverage
    keep = np.ones(qa.shape, bool)
    keep[:, 1, 1] = False
    np.testing.assert_array_equal(out.lst.values[keep], off.lst.values[keep])
    # uncertainty: base (+) 5 K exp(-d / 3 km), d from the Fmask cloud at (20, 20), step 0 only
    d = np.hypot(np.arange(24)[:, None] - 20, np.arange(24)[None, :] - 20) * 30.0
    expected = np.sqrt(off.lst_uncertainty.values[0] ** 2 + (5.0 * np.exp(-d / 3000.0)) ** 2)
    np.testing.assert_allclose(out.lst_uncertainty.values[0][keep[0]], expected[keep[0]], rtol=1e-5)
    np.testing.assert_array_equal(
        out.lst_uncertainty.values[1][keep[1]], off.lst_uncertainty.values[1][keep[1]]
    )
    # near_cloud bit: every valid pixel of step 0 (all within 1 km), none of step 1
    valid0 = np.isfinite(out.lst.values[0])
    assert ((qa[0] & lst.QA_NEAR_CLOUD) > 0)[valid0].all()
    assert not (qa[1] & lst.QA_NEAR_CLOUD).any()
    assert json.loads(out.attrs["parameters"])["cloud_screen"]["margin_k"] == 4.0


def test_new_bits_decode_with_cf_flag_masks():
    out = lst.run(_product_scene())
    attrs = out.lst_qa.attrs
    flags = list(
        zip(attrs["flag_masks"], attrs["flag_values"], attrs["flag_meanings"].split(), strict=True)
    )

    def decode(value):
        return [name for mask, flag, name in flags if (int(value) & int(mask)) == int(flag)]

    assert decode(out.lst_qa[0, 1, 1]) == ["masked", "residual_cloud"]
    assert decode(out.lst_qa[0, 0, 0])[-1] == "near_cloud"
    assert "near_cloud" not in decode(out.lst_qa[1, 0, 0])


def test_dask_backed_input_gives_the_same_screen():
    ds = _product_scene()
    eager = lst.run(ds)
    lazy = lst.run(ds.chunk({"y": 8, "x": 8}))
    np.testing.assert_array_equal(lazy.lst_qa.values, eager.lst_qa.values)
    np.testing.assert_allclose(lazy.lst_uncertainty.values, eager.lst_uncertainty.values)


GREENLAND = "landsat-c2l2-greenland"
PREFIX = "LC08_L2SP_005009_20150710_20200908_02_T2"


def test_greenland_ice_keeps_its_coverage_and_uncertainty_follows_usgs_st_qa(realdata):
    scene = load_landsat_c2_l2(realdata / GREENLAND)
    on, off = lst.run(scene, cloud_screen=NEAR), lst.run(scene, cloud_screen=False)
    # the screen removes nothing on an ice sheet: coverage and accuracy unchanged
    # (measured: 53,794 valid pixels either way; RMSE 0.142 K vs ST_B10 on 47,323 clear)
    assert int(np.isfinite(on.lst.values).sum()) == int(np.isfinite(off.lst.values).sum())
    assert not (on.lst_qa.values & lst.QA_RESIDUAL_CLOUD).any()
    clear = (scene.qa_clear & np.isfinite(scene.st_b10)).values
    assert score(on.lst.values, scene.st_b10.values, mask=clear)["rmse"] < 0.2
    # our uncertainty against the USGS ST_QA by distance to cloud (thinned scene: ~515 m px)
    with rasterio.open(realdata / GREENLAND / f"{PREFIX}_ST_QA.TIF") as src:
        st_qa = src.read(1).astype("float64")
        pixel = abs(src.transform.a)
    st_qa = np.where(st_qa == -9999, np.nan, st_qa * 0.01)
    fm = scene.fmask.values[0].astype(int)
    cloudy = ((fm & 0b1110) > 0) & (fm != 255)
    dist = ndimage.distance_transform_edt(~cloudy) * pixel
    unc = on.lst_uncertainty.values[0]
    usable = np.isfinite(unc) & np.isfinite(st_qa)
    medians = []
    for lo, hi in ((0, 600), (600, 1100), (1100, 2100), (2100, 4000)):
        sel = usable & (dist > lo) & (dist <= hi)
        ours, usgs = float(np.median(unc[sel])), float(np.median(st_qa[sel]))
        medians.append(ours)
        # measured: 4.36/5.39, 4.07/4.02, 3.19/3.57, 2.20/2.60 K
        assert 0.7 < ours / usgs < 1.3, (lo, hi, ours, usgs)
    assert medians == sorted(medians, reverse=True)
    far = usable & (dist > 16_000)
    assert float(np.median(unc[far])) < 0.4 * medians[0]


def _granule(archive, item_path):
    item = json.loads(item_path.read_text())
    profile = profile_for("HLSL30_2.0")
    folder = archive / "data" / "HLSL30_2.0" / item["id"]
    data = {}
    for name in ("blue", "green", "red", "nir08", "swir16", "swir22", "lwir11"):
        b = profile.band(name)
        with rasterio.open(folder / f"{item['id']}.{b.asset}.tif") as src:
            dn = src.read(1).astype("float64")
            transform = src.transform
        data[name] = (("y", "x"), np.where(dn == b.nodata, np.nan, dn * b.scale + b.offset))
    with rasterio.open(folder / f"{item['id']}.Fmask.tif") as src:
        data["fmask"] = (("y", "x"), src.read(1))
    ny, nx = data["fmask"][1].shape
    coords = {
        "x": transform.c + transform.a * np.arange(nx),
        "y": transform.f + transform.e * np.arange(ny),
    }
    return xr.Dataset(data, coords=coords), item


def test_sample_granules_lose_missed_clouds_and_no_truly_clear_pixel(sample_archive_small):
    """Every 8th L30 granule, all pixels Fmask lets through, screen off vs on.

    Measured on all 184 granules of the demo archive: RMSE 0.421 -> 0.377 K, missed-cloud
    pixels kept 7,072 -> 6,337, truly clear pixels kept 2,212,720 both ways.
    """
    items = sorted((sample_archive_small / "items" / "HLSL30_2.0").glob("*.json"))[::8]
    kept = {False: [0, 0], True: [0, 0]}  # [cloud px kept, truly clear px kept]
    errors = {False: [], True: []}
    for path in items:
        ds, item = _granule(sample_archive_small, path)
        truth = sample_archive_small / "truth"
        with rasterio.open(truth / "lst" / f"{item['id']}.tif") as src:
            truth_lst = src.read(1)
        with rasterio.open(truth / "clouds" / f"{item['id']}.tif") as src:
            clouds = src.read(1)
        atmosphere = item["properties"]["geoproc:atmosphere"]
        for on in (False, True):
            out = lst.run(ds, atmosphere=atmosphere, cloud_screen=on).lst.values
            finite = np.isfinite(out)
            kept[on][0] += int((finite & (clouds == 1)).sum())
            kept[on][1] += int((finite & (clouds == 0)).sum())
            both = finite & np.isfinite(truth_lst)
            errors[on].append(out[both] - truth_lst[both])
    assert kept[True][1] == kept[False][1] > 100_000  # no truly clear pixel lost
    assert kept[True][0] < kept[False][0]  # some missed cloud removed
    rmse = {on: float(np.sqrt(np.mean(np.concatenate(e) ** 2))) for on, e in errors.items()}
    assert rmse[True] < rmse[False]
