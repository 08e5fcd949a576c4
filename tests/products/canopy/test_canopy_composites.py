"""Monthly composites: median, circular gap filling, hemisphere alignment, latitude from the CRS."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from geoproc.errors import UsageError
from geoproc.products.canopy.composites import (
    SOUTH_SHIFT_DAYS,
    aligned_month,
    monthly_composites,
    pixel_latitude,
    season_shift_days,
)
from tests.helpers.canopy_series import class_grid, synthetic_dataset


def _times(*dates: str) -> np.ndarray:
    return pd.to_datetime(list(dates)).values


def test_median_of_the_clear_observations_of_a_month():
    times = _times("2024-06-03", "2024-06-10", "2024-06-20", "2024-06-25")
    values = np.array([0.30, 0.32, 0.90, np.nan], dtype="float32")  # 0.90 a missed cloud
    stack = np.repeat(values[:, None, None], 2, axis=1)  # (time, 2 bands, 1 pixel)
    comp = monthly_composites(stack, times)
    june = 5
    assert comp.values[june, 0, 0] == pytest.approx(0.32)  # median of 0.30, 0.32, 0.90
    assert comp.clear_count[0] == 3
    assert comp.observed[:, 0].sum() == 1


def test_gap_filling_is_linear_and_wraps_around_the_year():
    times = _times("2024-01-16", "2024-07-16")
    stack = np.array([0.1, 0.7], dtype="float32")[:, None, None]
    comp = monthly_composites(stack, times)
    filled = comp.values[:, 0, 0]
    assert filled[0] == pytest.approx(0.1) and filled[6] == pytest.approx(0.7)
    assert filled[3] == pytest.approx(0.4)  # April: half-way January -> July
    assert filled[9] == pytest.approx(0.4)  # October: half-way July -> next January
    assert filled[11] == pytest.approx(0.2)  # December: 5/6 of the way back to January
    assert comp.observed[:, 0].tolist() == [m in (0, 6) for m in range(12)]


def test_partly_masked_observation_is_not_clear_and_all_masked_pixel_is_nan():
    times = _times("2024-05-10", "2024-08-10")
    stack = np.full((2, 2, 2), 0.2, dtype="float32")
    stack[0, 1, 0] = np.nan  # pixel 0: one band masked in May -> May not clear
    stack[:, :, 1] = np.nan  # pixel 1: never clear
    comp = monthly_composites(stack, times)
    assert comp.clear_count.tolist() == [1, 0]
    assert comp.months_observed.tolist() == [1, 0]
    assert np.isnan(comp.values[:, :, 1]).all()
    assert np.allclose(comp.values[:, :, 0], 0.2)  # one month fills the whole year


def test_southern_summer_lands_in_the_same_aligned_month_as_northern_summer():
    january, july = _times("2024-01-15"), _times("2024-07-15")
    assert aligned_month(july, shift_days=0)[0] == 6
    assert aligned_month(january, shift_days=SOUTH_SHIFT_DAYS)[0] == 6
    assert season_shift_days(np.array([47.5, -36.0, 0.0])).tolist() == [0, 182, 0]
    # per-pixel shifts in one call: a January observation is winter north, summer south
    stack = np.full((1, 1, 2), 0.3, dtype="float32")
    comp = monthly_composites(stack, january, shift_days=np.array([0, 182]))
    assert comp.observed[0].tolist() == [True, False]
    assert comp.observed[6].tolist() == [False, True]


def test_seasons_covered_counts_aligned_seasons():
    times = _times("2024-01-10", "2024-04-10", "2024-07-10")  # DJF, MAM, JJA in the north
    stack = np.full((3, 1, 1), 0.3, dtype="float32")
    assert monthly_composites(stack, times).seasons_covered.tolist() == [3]
    # in the south Jan, Apr, Jul are aligned Jul, Oct, Jan (JJA, SON, DJF): still three
    south = monthly_composites(stack, times, shift_days=182)
    assert south.seasons_covered.tolist() == [3]
    assert south.observed[:, 0].nonzero()[0].tolist() == [0, 6, 9]


def test_latitude_comes_from_the_crs_of_the_dataset():
    north = synthetic_dataset(class_grid(["grass"], repeat=2))
    south = synthetic_dataset(class_grid(["grass"], repeat=2), south=True)
    lat_north, lat_south = pixel_latitude(north), pixel_latitude(south)
    assert lat_north.shape == (2, 2)
    assert 47.0 < lat_north.min() and lat_north.max() < 48.0
    assert -37.0 < lat_south.min() and lat_south.max() < -35.5
    # rows go north to south: latitude decreases down the rows
    assert lat_north[0, 0] > lat_north[1, 0]


def test_missing_crs_is_a_usage_error_naming_the_options():
    ds = xr.Dataset(coords={"y": [1.0, 2.0], "x": [1.0, 2.0]})
    with pytest.raises(UsageError, match="hemisphere="):
        pixel_latitude(ds)


def test_wrong_shape_is_a_usage_error():
    with pytest.raises(UsageError, match="time, bands, pixels"):
        monthly_composites(np.zeros((3, 2)), _times("2024-01-01", "2024-02-01", "2024-03-01"))


def test_snowy_observations_are_screened_out_and_interpolated_over():
    times = _times("2024-01-15", "2024-03-15", "2024-06-15")
    # blue, green, red, nir08, swir16, swir22: snow bright in the visible, dark in SWIR
    snow = [0.80, 0.78, 0.75, 0.70, 0.08, 0.05]
    conifer = [0.02, 0.035, 0.02, 0.21, 0.10, 0.045]
    stack = np.array([snow, conifer, conifer], dtype="float32")[:, :, None]
    comp = monthly_composites(stack, times)
    assert comp.clear_count.tolist() == [2]
    assert not comp.observed[0, 0]
    np.testing.assert_allclose(comp.values[0, :, 0], conifer, rtol=1e-6)
    kept = monthly_composites(stack, times, screen_snow=False)
    assert kept.clear_count.tolist() == [3]
