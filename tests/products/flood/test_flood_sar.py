"""Split-based SAR thresholding: water found where it is, nothing invented where it is not."""

from __future__ import annotations

import numpy as np
import pytest

from geoproc.products import thresholds as T
from geoproc.products.flood import sar as S

ENL = 4.4  # equivalent number of looks of Sentinel-1 IW GRD


def _land(n: int, seed: int, *, mean_db: float = -9.0, texture_db: float = 1.5) -> np.ndarray:
    """Linear gamma0 of a water-free scene: fields (16 px) of varying brightness x gamma speckle."""
    rng = np.random.default_rng(seed)
    fields = rng.normal(mean_db, texture_db, size=(n // 16, n // 16))
    texture = 10 ** (np.kron(fields, np.ones((16, 16))) / 10)
    return (texture * rng.gamma(ENL, 1 / ENL, size=(n, n))).astype(np.float32)


def _with_water(
    lin: np.ndarray, water: np.ndarray, seed: int, water_db: float = -22.0
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = lin.copy()
    out[water] = 10 ** (water_db / 10) * rng.gamma(ENL, 1 / ENL, size=int(water.sum()))
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_water_free_speckle_scene_is_rejected_as_unimodal(seed):
    db = S.despeckle_db(S.to_db(_land(256, seed)))
    split = S.split_based_fit(db)
    p = S.water_probability(db, split)
    false_positive_rate = float((p >= 0.5).mean())
    assert split.fit is None
    assert false_positive_rate < 0.01
    # The test can fail: a plain Otsu split of the same scene invents water in ~half of it.
    assert float((db < T.otsu_threshold(db)).mean()) > 0.2


def test_bimodal_scene_threshold_between_modes_and_water_found():
    water = np.zeros((512, 512), bool)
    water[100:300, 50:200] = True
    water[400:440, :] = True
    db = S.despeckle_db(S.to_db(_with_water(_land(512, 5), water, 9)))
    split = S.split_based_fit(db)
    assert split.fit is not None and split.tiles
    assert -22.0 < split.threshold_db < -9.0
    assert split.fit.mean[0] == pytest.approx(-22.0, abs=1.0)
    pred = S.water_probability(db, split) >= 0.5
    iou = (pred & water).sum() / (pred | water).sum()
    assert iou > 0.95


def test_narrow_river_found_by_the_quadtree():
    water = np.zeros((512, 512), bool)
    water[:, 250:262] = (
        True  # 12 px wide river: 2.3% of the scene, invisible in the global histogram
    )
    db = S.despeckle_db(S.to_db(_with_water(_land(512, 7), water, 3)))
    split = S.split_based_fit(db)
    assert split.fit is not None
    pred = S.water_probability(db, split) >= 0.5
    assert pred[water].mean() > 0.95  # the median keeps the banks
    assert pred[~water].mean() < 0.01


def test_db_and_linear_inputs_agree_and_nan_stays_nan():
    lin = _land(64, 1)
    lin[:5, :5] = np.nan
    lin[10, 10] = 0.0  # RTC nodata
    from_lin = S.to_db(lin)
    from_db = S.to_db(from_lin)  # negative values: recognised as dB already
    np.testing.assert_allclose(from_db, from_lin)
    assert np.isnan(from_lin[:5, :5]).all() and np.isnan(from_lin[10, 10])
    np.testing.assert_allclose(from_lin[20, 20], 10 * np.log10(lin[20, 20]), rtol=1e-6)
    smooth = S.despeckle_db(from_lin, window=3)
    assert np.isnan(smooth[:5, :5]).all() and np.isnan(smooth[10, 10])
    assert np.isfinite(smooth[12:, 12:]).all()
    # median of the 3x3 dB neighbourhood, by hand, at an interior pixel and next to the NaN block
    expected = np.median(from_lin[29:32, 29:32])
    assert smooth[5, 5] == pytest.approx(np.nanmedian(from_lin[4:7, 4:7]), abs=1e-5)
    assert smooth[30, 30] == pytest.approx(expected, abs=1e-4)
    assert float(np.std(smooth[12:, 12:])) < 0.6 * float(np.std(from_lin[12:, 12:]))


def test_all_masked_image_gives_no_fit_and_nan_probability():
    db = np.full((64, 64), np.nan, np.float32)
    split = S.split_based_fit(db)
    assert split.fit is None and np.isnan(split.threshold_db)
    assert np.isnan(S.water_probability(db, split)).all()


def test_auto_units_follow_the_median_not_a_few_negative_linear_values():
    """Noise-subtracted GRD holds some linear values <= 0 over calm water: still linear."""
    lin = _land(64, 3)
    lin[:8, :8] = np.float32(-1e-4)  # thermal noise removal overshoot
    assert S.guess_units(lin) == "linear"
    db = S.to_db(lin)
    assert np.isnan(db[:8, :8]).all()
    np.testing.assert_allclose(db[20, 20], 10 * np.log10(lin[20, 20]), rtol=1e-6)
    as_db = 10 * np.log10(_land(64, 4))
    assert S.guess_units(as_db) == "db"
    np.testing.assert_array_equal(S.to_db(as_db), as_db)


def test_zero_filled_db_export_is_no_data_not_a_bright_mode():
    db = 10 * np.log10(_land(64, 5))
    db[:, :10] = 0.0  # GeoTIFF exports without NaN fill the swath edge with 0
    out = S.to_db(db, units="db")
    assert np.isnan(out[:, :10]).all() and np.isfinite(out[:, 10:]).all()


def test_minimum_mapping_unit_drops_specks_and_keeps_bodies():
    p = np.zeros((40, 40), np.float32)
    p[2:4, 2:4] = 0.9  # 4 px speck
    p[10:30, 10:12] = 0.8  # 40 px river
    p[35, 35] = 0.99  # single pixel
    out = S.drop_small_water(p, min_pixels=10)
    assert (out[2:4, 2:4] == S.SMALL_WATER_PROBABILITY).all() and out[35, 35] < 0.5
    np.testing.assert_array_equal(out[10:30, 10:12], np.float32(0.8))
    np.testing.assert_array_equal(S.drop_small_water(p, min_pixels=0), p)


def test_chip_of_nothing_but_calm_water_is_water_and_a_darkened_land_chip_is_not():
    rng = np.random.default_rng(8)
    water = 10 ** (-21.0 / 10) * rng.gamma(ENL, 1 / ENL, (128, 128))
    db = S.despeckle_db(S.to_db(water))
    split = S.split_based_fit(db, pol="vv")
    assert split.method == "all_dark"
    assert (S.water_probability(db, split) >= 0.5).mean() > 0.99
    # the same statistics 5 dB brighter (a wet or frozen landscape near the bound): no water
    dark_land = S.despeckle_db(S.to_db(water * 10**0.5))
    assert S.split_based_fit(dark_land, pol="vv").fit is None
