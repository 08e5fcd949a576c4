"""Synthetic per-pixel HLS series for the canopy tests, and checks that they look as intended.

Class spectra follow typical HLS surface reflectance (e.g. Claverie et al. 2018; HRL
Dominant Leaf Type ATBD): deciduous broadleaf green-up ~DOY 110 and leaf-off ~DOY 300 with
summer NIR ~0.40, conifer evergreen and dark (NIR ~0.21), evergreen broadleaf (tropical,
eucalypt) bright all year (NIR ~0.34), grassland moderate season bright in SWIR, cropland
short season. South of the equator the cycle is shifted by half a year.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import rioxarray  # noqa: F401
import xarray as xr

from geoproc.products.canopy.composites import CANOPY_BANDS

# band order: blue, green, red, nir08, swir16, swir22
SPECTRA = {
    "broadleaf": (
        (0.045, 0.065, 0.075, 0.21, 0.22, 0.15),  # leaf-off
        (0.025, 0.050, 0.030, 0.40, 0.18, 0.080),  # summer
        (110, 300),
    ),
    "conifer": (
        (0.022, 0.035, 0.025, 0.19, 0.11, 0.050),
        (0.020, 0.035, 0.020, 0.22, 0.10, 0.045),
        (120, 290),
    ),
    "evergreen_broadleaf": (
        (0.026, 0.052, 0.028, 0.34, 0.16, 0.070),
        (0.025, 0.050, 0.026, 0.36, 0.16, 0.068),
        (120, 290),
    ),
    "grass": (
        (0.060, 0.080, 0.090, 0.22, 0.28, 0.18),
        (0.040, 0.080, 0.050, 0.32, 0.25, 0.13),
        (100, 290),
    ),
    "crop": (
        (0.080, 0.100, 0.120, 0.20, 0.30, 0.22),
        (0.030, 0.070, 0.035, 0.42, 0.22, 0.10),
        (150, 225),
    ),
}
TRUTH = {"broadleaf": 1, "evergreen_broadleaf": 1, "conifer": 2, "grass": 0, "crop": 0}
CRS_NORTH = "EPSG:32632"  # ~47.5N, 11E
CRS_SOUTH = "EPSG:32755"  # ~36S, 147E (Victoria, eucalypt country)
ORIGIN = {CRS_NORTH: (650000.0, 5262000.0), CRS_SOUTH: (500000.0, 6010000.0)}


def series_values(kind: str, day_of_year: np.ndarray, *, south: bool = False) -> np.ndarray:
    """(time, 6) reflectance of one class along days of year (shifted half a year in the south)."""
    low, high, (green_up, leaf_off) = SPECTRA[kind]
    doy = np.mod(day_of_year - (182 if south else 0), 365.25)
    leafy = 1 / (1 + np.exp(-(doy - green_up) / 8)) - 1 / (1 + np.exp(-(doy - leaf_off) / 8))
    return np.asarray(low)[None] + leafy[:, None] * (np.asarray(high) - np.asarray(low))[None]


def synthetic_dataset(
    classes: np.ndarray,
    *,
    south: bool = False,
    times: pd.DatetimeIndex | None = None,
    cloud_fraction: float = 0.4,
    noise: float = 0.004,
    seed: int = 0,
) -> xr.Dataset:
    """A (time, y, x) HLS-like Dataset with NaN clouds for a (y, x) array of class names."""
    rng = np.random.default_rng(seed)
    if times is None:
        times = pd.date_range("2024-01-03", "2024-12-28", freq="5D") + pd.Timedelta("10h30min")
    doy = (times.dayofyear.values - 1).astype("float64")
    ny, nx = classes.shape
    data = np.empty((len(times), 6, ny, nx), dtype="float32")
    for j in range(ny):
        for i in range(nx):
            data[:, :, j, i] = series_values(classes[j, i], doy, south=south)
    data += rng.normal(0, noise, data.shape).astype("float32")
    cloudy = rng.random((len(times), 1, ny, nx)) < cloud_fraction
    data = np.where(cloudy, np.nan, data).astype("float32")
    crs = CRS_SOUTH if south else CRS_NORTH
    x0, y0 = ORIGIN[crs]
    coords = {
        "time": times.values.astype("datetime64[ns]"),
        "y": y0 - 30.0 * (np.arange(ny) + 0.5),
        "x": x0 + 30.0 * (np.arange(nx) + 0.5),
    }
    ds = xr.Dataset(
        {b: (("time", "y", "x"), data[:, k]) for k, b in enumerate(CANOPY_BANDS)}, coords=coords
    )
    return ds.rio.write_crs(crs)


def class_grid(kinds: list[str], *, repeat: int = 4) -> np.ndarray:
    """A (repeat, len(kinds) * repeat) grid: blocks of each class side by side."""
    return np.repeat(np.array([kinds] * repeat), repeat, axis=1)


def truth_of(classes: np.ndarray) -> np.ndarray:
    return np.vectorize(TRUTH.get)(classes).astype("uint8")
