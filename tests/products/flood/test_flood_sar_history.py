"""flood.run with a Sentinel-1 history: thin rivers kept by the prior, flooded forest found by
double bounce, dark dry fields rejected by change detection; each checked against its switch."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from geoproc.errors import UsageError
from geoproc.products import flood

N = 96
ENL = 4.4
BANDS = ("blue", "green", "red", "nir08", "swir16", "swir22")
WATER_REFL = (0.06, 0.07, 0.05, 0.03, 0.015, 0.01)
LAND_REFL = (0.04, 0.07, 0.05, 0.30, 0.20, 0.10)
N_OPTICAL, N_SAR = 6, 10
FLOOD_SAR, DRY_SPELL_SAR, LEAF_OUT_SAR = 7, 4, 2


def _regions() -> dict[str, np.ndarray]:
    def box(r0, r1, c0, c1):
        m = np.zeros((N, N), bool)
        m[r0:r1, c0:c1] = True
        return m

    return {
        "river": box(0, N, 44, 46),  # 2 px wide
        "meadow_flood": box(40, 80, 48, 62),
        "forest": box(0, N, 62, N),
        "forest_flood": box(40, 80, 62, 74),
        "dry_field": box(60, 90, 5, 35),
    }


def _series(seed: int = 0, *, dry_spell: bool = True) -> tuple[xr.Dataset, dict[str, np.ndarray]]:
    """6 clear optical dates, then 10 Sentinel-1 dates (a flood on one, a dry spell on another).

    The only permanent water is a 2 px river, so only the flood date has a bimodal split and
    the other dates borrow it with this scene's small water share, as on real river tiles.
    """
    rng = np.random.default_rng(seed)
    r = _regions()
    nt = N_OPTICAL + N_SAR
    data = {b: np.full((nt, N, N), np.nan, np.float32) for b in (*BANDS, "vv", "vh")}
    water = r["river"]
    for t in range(N_OPTICAL):
        for b, w, land in zip(BANDS, WATER_REFL, LAND_REFL, strict=True):
            data[b][t] = np.where(water, w, land) * (1 + 0.05 * rng.normal(size=(N, N)))
    for k in range(N_SAR):
        vv = np.full((N, N), -10.0)
        vv[r["forest"]] = -7.5
        vv[r["dry_field"]] = -16.0  # a smooth surface (sand, tarmac, rolled soil)
        vv[r["river"]] = -19.5  # narrower than the speckle filter: blurred towards land
        if k == FLOOD_SAR:
            vv[r["meadow_flood"]] = -21.0
            vv[r["forest_flood"]] += 3.0  # double bounce
        if k == DRY_SPELL_SAR and dry_spell:
            vv[r["dry_field"]] = -18.5  # drier still: darker, but only by 2.5 dB
        if k == LEAF_OUT_SAR:
            vv[r["forest"]] += 3.0  # a seasonal rise with no flood anywhere
        t = N_OPTICAL + k
        for pol, offset in (("vv", 0.0), ("vh", -7.0)):
            lin = 10 ** ((vv + offset) / 10) * rng.gamma(ENL, 1 / ENL, (N, N))
            data[pol][t] = lin.astype(np.float32)
    ds = xr.Dataset(
        {k: (("time", "y", "x"), v) for k, v in data.items()},
        coords={"time": pd.date_range("2024-03-01", periods=nt, freq="6D")},
    )
    return ds, r


@pytest.fixture(scope="module")
def series():
    ds, r = _series()
    return ds, r, flood.run(ds)


def _inner(mask: np.ndarray, margin: int = 2) -> np.ndarray:
    """The mask without a margin at its edges (speckle filter and window blur the edges)."""
    from scipy import ndimage

    return ndimage.binary_erosion(mask, iterations=margin)


def test_thin_river_on_sar_dates_kept_by_the_optical_history_prior():
    # without the dry spell, whose own split would lend the other dates a second fit
    ds, r = _series(dry_spell=False)
    out = flood.run(ds)
    sar = slice(N_OPTICAL, None)
    river = out.water.values[sar][:, r["river"]]
    # measured 0.71: the river's prior (optical water 6/6 -> 0.875) moves the split's
    # threshold towards land for these pixels only
    assert (river == flood.WATER_REFERENCE).mean() > 0.6
    assert (
        out.water.values[sar][:, ~r["river"] & ~r["meadow_flood"] & ~r["forest"]] > 0
    ).mean() < 0.01
    # without the prior the scene-wide split (2 % water share) calls most of the river land
    # flood 1.1 called most of the river land without the prior (< 0.2): the scene-wide VV
    # split with a 2 % water share. Since 1.2 the better-separated polarisation decides
    # and the water bounds follow the literature, so the river holds without the prior too.
    default = flood.run(ds, sar_history_prior=False)
    assert (default.water.values[sar][:, r["river"]] > 0).mean() > 0.9
    assert (
        default.water.values[sar][:, ~r["river"] & ~r["meadow_flood"] & ~r["forest"]] > 0
    ).mean() < 0.01


def test_flooded_forest_found_by_double_bounce_only_when_connected_to_flood(series):
    ds, r, out = series
    t = N_OPTICAL + FLOOD_SAR
    water, diag = out.water.values[t], out.diagnostic.values[t]
    inner = _inner(r["forest_flood"])
    assert (water[inner] == flood.WATER_FLOOD).mean() > 0.9
    assert ((diag[inner] >> flood.BIT_SAR_DOUBLE_BOUNCE) & 1).mean() > 0.9
    assert (water[_inner(r["meadow_flood"])] == flood.WATER_FLOOD).mean() > 0.95
    dry_forest = _inner(r["forest"] & ~r["forest_flood"], 4)
    assert (water[dry_forest] > 0).mean() < 0.01
    # the seasonal forest rise with no flood water on the date is not a flood
    leaf = out.water.values[N_OPTICAL + LEAF_OUT_SAR]
    assert (leaf[r["forest"]] > 0).mean() < 0.01
    plain = flood.run(ds, double_bounce=False)
    assert (plain.water.values[t][inner] > 0).mean() < 0.1


def test_dark_field_that_did_not_darken_enough_is_not_flood(series):
    ds, r, out = series
    t = N_OPTICAL + DRY_SPELL_SAR
    field = _inner(r["dry_field"])
    # the field alone makes this date's histogram bimodal: the split calls all of it water
    plain = flood.run(ds, sar_min_drop_db=None)
    assert (plain.water.values[t][field] > 0).mean() > 0.9
    # but it is only 2.5 dB darker than its own reference: measured 0.20 left (speckle)
    assert (out.water.values[t][field] > 0).mean() < 0.35
    assert ((out.diagnostic.values[t][field] >> flood.BIT_SAR_UNCHANGED_DARK) & 1).mean() > 0.6
    # a real flood, 11 dB darker than its reference, is untouched
    flooded = _inner(r["meadow_flood"])
    assert not (
        (out.diagnostic.values[N_OPTICAL + FLOOD_SAR][flooded] >> flood.BIT_SAR_UNCHANGED_DARK) & 1
    ).any()


def test_new_diagnostic_bits_are_declared_in_the_flag_meanings(series):
    _, _, out = series
    meanings = out.diagnostic.attrs["flag_meanings"].split()
    assert meanings[flood.BIT_SAR_DOUBLE_BOUNCE] == "sar_double_bounce_rise"
    assert meanings[flood.BIT_SAR_UNCHANGED_DARK] == "sar_dark_but_not_darker_than_reference"
    masks = np.asarray(out.diagnostic.attrs["flag_masks"])
    assert masks[flood.BIT_SAR_UNCHANGED_DARK] == 1 << flood.BIT_SAR_UNCHANGED_DARK


LAKE = (slice(8, 40), slice(8, 40))


def _flood_free_series(seed: int) -> xr.Dataset:
    """A lake among fields of varying brightness, forests and towns, and no flood; one date
    darkened by wet snow (-3 dB), one brightened by rain (+2 dB), one with leaf-out in the
    forest (+3 dB)."""
    rng = np.random.default_rng(seed)
    fields = np.kron(rng.normal(-11.0, 1.5, (N // 16, N // 16)), np.ones((16, 16)))
    fields[:, 64:] = -7.5  # forest / town
    lake = np.zeros((N, N), bool)
    lake[LAKE] = True
    nt = N_OPTICAL + N_SAR
    data = {b: np.full((nt, N, N), np.nan, np.float32) for b in (*BANDS, "vv", "vh")}
    for t in range(N_OPTICAL):
        for b, w, land in zip(BANDS, WATER_REFL, LAND_REFL, strict=True):
            data[b][t] = np.where(lake, w, land) * (1 + 0.05 * rng.normal(size=(N, N)))
    for k in range(N_SAR):
        vv = fields + {2: -3.0, 5: 2.0}.get(k, 0.0)
        if k == 8:
            vv = np.where(np.arange(N)[None, :] >= 64, vv + 3.0, vv)
        vv = np.where(lake, -22.0, vv)
        lin = 10 ** (vv / 10) * rng.gamma(ENL, 1 / ENL, (N, N))
        data["vv"][N_OPTICAL + k] = lin
        data["vh"][N_OPTICAL + k] = lin * 10 ** (-0.7) * rng.gamma(ENL, 1 / ENL, (N, N))
    return xr.Dataset(
        {k: (("time", "y", "x"), v) for k, v in data.items()},
        coords={"time": pd.date_range("2024-01-01", periods=nt, freq="6D")},
    )


@pytest.mark.parametrize("seed", [0, 1])
def test_flood_free_series_gets_almost_no_false_water(seed):
    ds = _flood_free_series(seed)
    out = flood.run(ds)
    land = np.ones((N, N), bool)
    land[5:43, 5:43] = False  # the lake and a 3 px shore
    water = out.water.values[:, land]
    # measured 1e-5 (seed 0) and 1e-5 (seed 1): one or two speckle pixels in 150,000
    assert (water[water != flood.WATER_NODATA] > 0).mean() < 0.002
    assert (out.water.values[:, 12:36, 12:36] == flood.WATER_REFERENCE).mean() > 0.99


def test_double_bounce_options_from_a_json_request_and_bad_keys():
    ds, r = _series()
    t = N_OPTICAL + FLOOD_SAR
    strict = flood.run(ds.isel(time=slice(N_OPTICAL, None)), double_bounce={"min_increase_db": 6.0})
    assert not ((strict.diagnostic.values >> flood.BIT_SAR_DOUBLE_BOUNCE) & 1).any()
    assert strict.water.values[t - N_OPTICAL][_inner(r["meadow_flood"])].min() > 0
    with pytest.raises(UsageError, match="min_increase_db"):
        flood.run(ds, double_bounce={"min_rise": 2.0})


def test_wet_snow_date_of_a_series_is_not_split_into_water():
    """A date whose whole scene darkened (wet snow) keeps the open-water bound of -18 dB.

    Its darkest part (-17.3 dB in VV) against the rest (-13.5 dB) is bimodal, and -17.3 dB
    passes the single-date bound of -17 dB: the sample archive's winter tile was 34 %
    "flooded" that way. In a series the date is recognised as darkened (scene median more
    than `sar_max_shift_db` below the series' median) and gets no water.
    """
    ds, r = _series(dry_spell=False)
    rng = np.random.default_rng(7)
    t = N_OPTICAL + 3
    snow = np.zeros((N, N), bool)
    snow[:, : N // 3] = True
    vv = np.where(snow, -17.3, -13.5)
    for pol, offset in (("vv", 0.0), ("vh", -7.0)):
        ds[pol][t] = (10 ** ((vv + offset) / 10) * rng.gamma(ENL, 1 / ENL, (N, N))).astype(
            np.float32
        )
    out = flood.run(ds, sar_history_prior=False)
    assert (out.water.values[t][snow] > 0).mean() < 0.01
    # the other SAR dates still find the river (the rule touches darkened dates only)
    others = [N_OPTICAL + k for k in range(N_SAR) if N_OPTICAL + k != t]
    assert (out.water.values[others][:, r["river"]] > 0).mean() > 0.9
