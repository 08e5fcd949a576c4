"""flood.run end to end on small synthetic cubes: classes, masking, fusion, errors, metadata."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from geoproc.errors import UsageError
from geoproc.products import flood
from geoproc.products.flood.score import score

NY = NX = 128
BANDS = ("blue", "green", "red", "nir08", "swir16", "swir22")
# Typical surface reflectance of clear water and of vegetated land (HLS, 0-1).
WATER_REFL = {
    "blue": 0.06,
    "green": 0.07,
    "red": 0.05,
    "nir08": 0.03,
    "swir16": 0.015,
    "swir22": 0.01,
}
LAND_REFL = {
    "blue": 0.04,
    "green": 0.07,
    "red": 0.05,
    "nir08": 0.30,
    "swir16": 0.20,
    "swir22": 0.10,
}


def _masks():
    lake = np.zeros((NY, NX), bool)
    lake[10:40, 10:60] = True
    flood_area = np.zeros((NY, NX), bool)
    flood_area[70:110, 20:100] = True
    return lake, flood_area


def _cube(
    nt: int = 4, flood_step: int = 2, *, sar: bool = True, optical: bool = True, seed: int = 0
) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    lake, flood_area = _masks()
    data: dict[str, np.ndarray] = {}
    for t in range(nt):
        water = lake | (flood_area if t == flood_step else False)
        if optical:
            for b in BANDS:
                refl = np.where(water, WATER_REFL[b], LAND_REFL[b]) * (
                    1 + 0.08 * rng.normal(size=(NY, NX))
                )
                data.setdefault(b, np.zeros((nt, NY, NX), np.float32))[t] = refl
        if sar:
            for pol, (w_db, l_db) in {"vv": (-22.0, -9.0), "vh": (-28.0, -16.0)}.items():
                lin = 10 ** (np.where(water, w_db, l_db) / 10) * rng.gamma(4.4, 1 / 4.4, (NY, NX))
                data.setdefault(pol, np.zeros((nt, NY, NX), np.float32))[t] = lin
    return xr.Dataset(
        {k: (("time", "y", "x"), v) for k, v in data.items()},
        coords={
            "time": pd.date_range("2024-05-01", periods=nt, freq="12D"),
            "y": 4_000_000.0 - 30.0 * np.arange(NY),
            "x": 500_000.0 + 30.0 * np.arange(NX),
        },
    )


def _truth(nt: int = 4, flood_step: int = 2) -> np.ndarray:
    lake, flood_area = _masks()
    t = np.zeros((nt, NY, NX), np.uint8)
    t[:, lake] = 1
    t[flood_step, flood_area & ~lake] = 2
    return t


@pytest.mark.parametrize(
    "sensors", [{"sar": True, "optical": True}, {"sar": False}, {"optical": False}]
)
def test_flood_and_reference_water_recovered(sensors):
    out = flood.run(_cube(**sensors))
    s = score(out, _truth())
    assert s["overall"]["coverage"] == 1.0
    assert s["overall"]["water"]["iou"] > 0.95
    assert s["overall"]["flood"]["iou"] > 0.9
    lake, _ = _masks()
    inner = np.zeros_like(lake)
    inner[12:38, 12:58] = True
    assert (out.water.values[:, inner] == flood.WATER_REFERENCE).all()


def test_output_types_metadata_and_sources():
    out = flood.run(_cube())
    assert out.water.dtype == np.uint8 and out.water_probability.dtype == np.uint8
    assert out.diagnostic.dtype == np.uint16 and out.uncertainty.dtype == np.float32
    assert out.water.attrs["flag_meanings"] == "not_water reference_water flood_water"
    assert out.water.encoding["_FillValue"] == 255
    assert out.water.dims == ("time", "y", "x") and out.sizes["time"] == 4
    np.testing.assert_array_equal(out.x.values, _cube().x.values)
    assert (out.water_source.values == 3).all()  # optical and SAR saw every pixel
    p = out.water_probability.values
    assert p.max() <= 100 and p.min() >= 0
    # lake pixels pass all five DSWx tests and are dark in VV and VH
    assert (out.diagnostic.values[0, 20, 20] & 0b1111111) == 0b1111111
    assert out.sar_threshold_vv_db.values == pytest.approx(np.full(4, -17.0), abs=2.5)
    assert "dswx" in out.attrs["method"].lower() or "DSWx" in out.attrs["method"]


def test_masked_input_gives_255_everywhere_it_is_masked():
    ds = _cube(sar=False)
    ds["green"][1, :20, :] = np.nan  # one band missing -> no optical test
    fmask = np.zeros((4, NY, NX), np.uint8)
    fmask[2, 50:60, :] = 1 << 1  # cloud
    fmask[3, :, :5] = 255  # fill
    ds["fmask"] = (("time", "y", "x"), fmask)
    out = flood.run(ds)
    w = out.water.values
    assert (w[1, :20] == 255).all() and (w[2, 50:60] == 255).all() and (w[3, :, :5] == 255).all()
    assert (out.water_probability.values[w == 255] == 255).all()
    assert np.isnan(out.uncertainty.values[w == 255]).all()
    assert (out.water_source.values[w == 255] == 0).all()
    assert (w[0] != 255).all()


def test_sar_fills_optical_gaps_under_cloud():
    ds = _cube()
    fmask = np.zeros((4, NY, NX), np.uint8)
    fmask[2, 60:120, :] = 1 << 1  # cloud over most of the flood
    ds["fmask"] = (("time", "y", "x"), fmask)
    out = flood.run(ds)
    _, flood_area = _masks()
    cloudy = np.zeros_like(flood_area)
    cloudy[60:120] = True
    assert (out.water_source.values[2][cloudy] == 2).all()  # SAR alone decided there
    inner = flood_area.copy()
    inner[70, :] = inner[109, :] = False
    assert (out.water.values[2][inner & cloudy] == flood.WATER_FLOOD).mean() > 0.95


def test_hls_integer_reflectance_gives_the_same_map():
    ds = _cube(sar=False)
    scaled = ds.copy()
    for b in BANDS:
        scaled[b] = np.rint(ds[b] * 10_000)
    a, b = flood.run(ds), flood.run(scaled)
    np.testing.assert_array_equal(a.water.values, b.water.values)


def test_water_free_sar_scene_gets_no_water():
    ds = _cube(optical=False, nt=1, flood_step=-1)
    lake, _ = _masks()
    rng = np.random.default_rng(4)
    for pol, l_db in (("vv", -9.0), ("vh", -16.0)):
        ds[pol][0] = (10 ** (l_db / 10) * rng.gamma(4.4, 1 / 4.4, (NY, NX))).astype(np.float32)
    out = flood.run(ds)
    assert (out.water.values != flood.WATER_NODATA).all()
    assert (out.water.values > 0).mean() < 0.01
    assert ((out.diagnostic.values >> flood.BIT_SAR_NO_SPLIT) & 1).all()


def test_user_reference_layer_and_single_scene():
    ds = _cube(nt=4).isel(time=2)
    lake, flood_area = _masks()
    out = flood.run(ds, reference=lake.astype(np.uint8))
    assert out.water.dims == ("y", "x")
    assert (out.water.values[15:35, 15:55] == flood.WATER_REFERENCE).all()
    assert (out.water.values[75:105, 25:95] == flood.WATER_FLOOD).all()
    # without any reference the single scene's water is flood, flagged as reference-unknown
    bare = flood.run(ds)
    assert (bare.water.values[15:35, 15:55] == flood.WATER_FLOOD).all()
    assert ((bare.diagnostic.values >> flood.BIT_REFERENCE_UNKNOWN) & 1).all()


def test_reference_time_window_selects_dry_season():
    ds = _cube(nt=4, flood_step=2)
    out = flood.run(ds, reference_time=("2024-05-01", "2024-05-13"))
    assert (out.water.values[2, 75:105, 25:95] == flood.WATER_FLOOD).all()
    with pytest.raises(UsageError, match="reference_time"):
        flood.run(ds, reference_time=("2030-01-01", "2030-02-01"))


def test_bad_inputs_raise_usage_errors_naming_the_fix():
    ds = _cube()
    with pytest.raises(UsageError, match="algorithm"):
        flood.run(ds, algorithm="magic")
    with pytest.raises(UsageError, match="swir16"):
        flood.run(ds[["red", "green"]])
    with pytest.raises(UsageError, match="same \\(y, x\\) grid"):
        flood.run(ds, reference=np.zeros((3, 3)))
    with pytest.raises(UsageError, match="model"):
        flood.run(ds, algorithm="unet")


def test_partly_snow_covered_pixels_are_not_water():
    ds = _cube(sar=False, nt=1, flood_step=-1)
    # 30% snow over vegetation: bright in visible and NIR, dark SWIR -> passes DSWx tests 1-3
    snow = {"blue": 0.33, "green": 0.34, "red": 0.32, "nir08": 0.43, "swir16": 0.13, "swir22": 0.07}
    for b, v in snow.items():
        ds[b][0, 100:120, 100:120] = v
    from geoproc.products.flood import dswx as flood_dswx

    bands = [np.array([snow[b]], np.float32) for b in BANDS]
    assert (
        flood_dswx.interpret(flood_dswx.diagnostic_tests(*bands))[0]
        == flood_dswx.MODERATE_CONFIDENCE
    )
    out = flood.run(ds)
    assert (out.water.values[0, 100:120, 100:120] == flood.WATER_NODATA).all()
    lake, _ = _masks()
    assert (out.water.values[0][lake] == flood.WATER_FLOOD).all()  # real water is kept


def _sar_series(
    nt: int, flood_step: int, *, wet_snow_step: int | None = None, seed: int = 5
) -> xr.Dataset:
    """VV-only series: a narrow river (too little water for a split) and one flood date."""
    rng = np.random.default_rng(seed)
    river = np.zeros((NY, NX), bool)
    river[:, 60:62] = True
    _, flood_area = _masks()
    vv = np.zeros((nt, NY, NX), np.float32)
    for t in range(nt):
        land = -9.0 - (3.0 if t == wet_snow_step else 0.0)
        water = river | (flood_area if t == flood_step else False)
        vv[t] = 10 ** (np.where(water, -22.0, land) / 10) * rng.gamma(4.4, 1 / 4.4, (NY, NX))
    return xr.Dataset(
        {"vv": (("time", "y", "x"), vv)},
        coords={"time": pd.date_range("2024-05-01", periods=nt, freq="6D")},
    ), river


def test_dates_without_a_split_borrow_the_series_fit_unless_the_scene_shifted():
    ds, river = _sar_series(4, flood_step=1, wet_snow_step=3)
    tiles_only = {"fallback": False}  # the borrowing rule alone, without the one-date fallbacks
    alone = flood.run(ds, sar_share_fit=False, split_options=tiles_only)
    shared = flood.run(ds, split_options=tiles_only)
    diag = shared.diagnostic.values
    # date 0: the river alone is not bimodal enough; with the series fit it is found
    assert (alone.water.values[0][river] > 0).mean() < 0.05
    assert (shared.water.values[0][river] > 0).mean() > 0.9
    assert ((diag[0] >> flood.BIT_SAR_SERIES_FIT) & 1).all()
    assert (shared.water.values[0][~river] > 0).mean() < 0.01
    # date 3: wet snow darkened all land by 3 dB: no borrowing, no invented water
    assert not ((diag[3] >> flood.BIT_SAR_SERIES_FIT) & 1).any()
    assert (shared.water.values[3][~river] > 0).mean() < 0.01
    assert np.isnan(shared.sar_threshold_vv_db.values[3])


def test_reference_is_kept_per_sensor_so_a_sar_blind_lake_is_not_a_flood():
    ds = _cube(nt=6, flood_step=4)
    lake, _ = _masks()
    # SAR-only dates (0-3): the lake is wind-roughened and as bright as land
    for t in range(4):
        for b in BANDS:
            ds[b][t] = np.nan
        ds["vv"][t] = np.where(lake, ds["vv"][t].values[~lake].mean(), ds["vv"][t].values)
    out = flood.run(ds)
    inner = np.zeros_like(lake)
    inner[12:38, 12:58] = True
    assert (out.water.values[4][inner] == flood.WATER_REFERENCE).all()
    assert (out.water.values[5][inner] == flood.WATER_REFERENCE).all()


def test_a_single_date_finds_a_narrow_river_by_the_fallback_split():
    """No history to borrow from: the global KI / dark-mode fallback finds 1.6 % water."""
    ds, river = _sar_series(4, flood_step=1)
    out = flood.run(ds.isel(time=0))
    assert (out.water.values[river] > 0).mean() > 0.9
    assert (out.water.values[~river] > 0).mean() < 0.01
    assert float(out.sar_threshold_vv_db) < -15.0


def test_all_masked_sar_scene_is_no_data_everywhere():
    ds = xr.Dataset({"vv": (("y", "x"), np.full((32, 32), np.nan, np.float32))})
    out = flood.run(ds)
    assert (out.water.values == flood.WATER_NODATA).all()
    assert (out.water_probability.values == 255).all()


def test_without_qa_clouds_are_screened_so_sar_maps_the_water_below():
    """S2 L1C-style input (no Fmask/SCL): a cloud over the flood must not hide it from SAR."""
    ds = _cube(nt=1, flood_step=0).isel(time=0)
    _, flood_area = _masks()
    cloud = {"blue": 0.4, "green": 0.4, "red": 0.4, "nir08": 0.45, "swir16": 0.42, "swir22": 0.25}
    for b, v in cloud.items():
        ds[b] = ds[b].where(~flood_area, v)
    out = flood.run(ds)
    assert (out.water.values[flood_area] > 0).mean() > 0.95
    assert (out.water_source.values[flood_area] == 2).mean() > 0.95  # SAR alone decided
    assert ((out.diagnostic.values[flood_area] >> flood.BIT_OPTICAL_CLOUD_GUARD) & 1).all()
    # a QA layer that calls the cloud clear is believed: the optical "not water" then wins
    with_qa = flood.run(ds.assign(fmask=(("y", "x"), np.zeros((NY, NX), np.uint8))))
    assert (with_qa.water.values[flood_area] > 0).mean() < 0.05
