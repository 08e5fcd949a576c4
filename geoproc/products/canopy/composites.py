"""Gap-filled monthly composites of a masked reflectance series, aligned to the local seasons.

Why: a tree-type decision needs one comparable annual cycle per pixel, whatever the revisit,
the cloudiness or the hemisphere. Each clear observation is placed in one of twelve
"season-aligned months" (day of year shifted by 182 days south of the equator, the usual
hemisphere correction of phenology studies, e.g. Zhang et al. 2003, Remote Sens. Environ.
84:471, and the MODIS MCD12Q2 user guide), the median of the clear observations of a month
is taken (robust to residual cloud, as in the Copernicus HRL Dominant Leaf Type monthly
composites), and empty months are filled by circular linear interpolation between the
nearest observed months. A validity mask keeps track of which months were observed, so a
model and the QA know how much of the cycle is real evidence: a dense series and three
seasonal composites both give twelve steps, with different evidence.

Snow is screened out spectrally before compositing (NDSI = (green - swir16) / (green +
swir16) > 0.4 with NIR > 0.11, the MODIS snow rule of Hall et al. 1995, Remote Sens.
Environ. 54:127), because cube builders commonly keep Fmask snow pixels and a snowy winter
would otherwise look like leaf-off: the winter months are then interpolated from autumn and
spring, which is the canopy's own state.

Months here are twelve equal slices of 365.25/12 days of the aligned day of year.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import xarray as xr

from geoproc.errors import UsageError

CANOPY_BANDS = ("blue", "green", "red", "nir08", "swir16", "swir22")
"""Band order of the composites (HLS common names shared by L30 and S30)."""
N_MONTHS = 12
SOUTH_SHIFT_DAYS = 182
"""Days added to the day of year south of the equator so that month 6 is mid-summer everywhere."""
_DAYS_PER_MONTH = 365.25 / N_MONTHS
# aligned month index (0 = Jan-like) -> meteorological season (0 DJF, 1 MAM, 2 JJA, 3 SON)
_SEASON_OF_MONTH = np.array([0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 0])


@dataclass(frozen=True)
class MonthlyComposites:
    """Twelve season-aligned monthly composites for a set of pixels."""

    values: np.ndarray
    """(12, bands, pixels) float32 reflectance, gap-filled; NaN where a pixel had no clear data."""
    observed: np.ndarray
    """(12, pixels) bool: True where the month held at least one clear observation."""
    clear_count: np.ndarray
    """(pixels,) int: clear observations used (all bands finite)."""

    @property
    def months_observed(self) -> np.ndarray:
        """(pixels,) number of months with real (not interpolated) data."""
        return self.observed.sum(axis=0)

    @property
    def seasons_covered(self) -> np.ndarray:
        """(pixels,) number of the four seasons (aligned DJF, MAM, JJA, SON) with any data."""
        seasons = np.zeros((4, self.observed.shape[1]), dtype=bool)
        for season in range(4):
            seasons[season] = self.observed[_SEASON_OF_MONTH == season].any(axis=0)
        return seasons.sum(axis=0)


def pixel_latitude(dataset: xr.Dataset | xr.DataArray) -> np.ndarray:
    """Latitude (degrees) of every pixel centre, (y, x), from the CRS in ``spatial_ref``.

    Why: the hemisphere decides how seasons are aligned, and a product must read it from
    the data rather than assume the northern summer.
    """
    crs = _crs_of(dataset)
    if crs is None:
        raise UsageError(
            "the dataset has no CRS: add a `spatial_ref` coordinate (rioxarray "
            "`ds.rio.write_crs(...)`) or pass `hemisphere=` or `latitude=` to the canopy product"
        )
    from pyproj import Transformer

    xs = np.asarray(dataset["x"].values, dtype="float64")
    ys = np.asarray(dataset["y"].values, dtype="float64")
    xx, yy = np.meshgrid(xs, ys)
    if crs.is_geographic:
        return yy
    to_lonlat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    _, lat = to_lonlat.transform(xx, yy)
    return np.asarray(lat, dtype="float64")


def season_shift_days(latitude: np.ndarray | float) -> np.ndarray:
    """Days to add to the day of year: 0 in the north, 182 in the south (pixel-wise)."""
    return np.where(np.asarray(latitude) < 0, SOUTH_SHIFT_DAYS, 0).astype("int64")


def aligned_month(times: np.ndarray, *, shift_days: int) -> np.ndarray:
    """Season-aligned month index 0..11 of each time (datetime64), after the hemisphere shift."""
    times = np.asarray(times).astype("datetime64[ns]")
    years = times.astype("datetime64[Y]")
    day_of_year = (times - years.astype("datetime64[ns]")) / np.timedelta64(1, "D")
    aligned = np.mod(day_of_year + shift_days, 365.25)
    return np.minimum((aligned // _DAYS_PER_MONTH).astype("int64"), N_MONTHS - 1)


def monthly_composites(
    values: np.ndarray,
    times: np.ndarray,
    *,
    shift_days: np.ndarray | int = 0,
    screen_snow: bool = True,
) -> MonthlyComposites:
    """Median monthly composites of ``values`` (time, bands, pixels), gap-filled circularly.

    An observation counts only where every band is finite (a partly masked observation is
    not clear) and, with ``screen_snow``, it is not snow (bands in `CANOPY_BANDS` order).
    ``shift_days`` is one value or one per pixel (see `season_shift_days`).
    """
    values = np.asarray(values, dtype="float32")
    if values.ndim != 3:
        raise UsageError(
            f"monthly_composites needs values shaped (time, bands, pixels), got {values.shape}"
        )
    n_time, n_bands, n_pix = values.shape
    if len(times) != n_time:
        raise UsageError(
            f"monthly_composites got {len(times)} times for {n_time} time steps: pass one time per step"
        )
    shifts = np.broadcast_to(np.asarray(shift_days, dtype="int64"), (n_pix,))
    clear = np.isfinite(values).all(axis=1)  # (time, pixels)
    if screen_snow and n_bands == len(CANOPY_BANDS):
        clear &= ~_is_snow(values)
    composite = np.full((N_MONTHS, n_bands, n_pix), np.nan, dtype="float32")
    observed = np.zeros((N_MONTHS, n_pix), dtype=bool)
    for shift in np.unique(shifts):
        pixels = np.flatnonzero(shifts == shift)
        months = aligned_month(times, shift_days=int(shift))
        for month in range(N_MONTHS):
            steps = np.flatnonzero(months == month)
            if steps.size == 0:
                continue
            block = values[np.ix_(steps, np.arange(n_bands), pixels)]
            block_clear = clear[np.ix_(steps, pixels)]
            block = np.where(block_clear[:, None, :], block, np.nan)
            composite[month][:, pixels] = _nan_median_axis0(block)
            observed[month, pixels] = block_clear.any(axis=0)
    filled = _fill_circular(composite, observed)
    return MonthlyComposites(values=filled, observed=observed, clear_count=clear.sum(axis=0))


def _is_snow(values: np.ndarray) -> np.ndarray:
    """(time, pixels) True where an observation looks like snow (NDSI > 0.4, NIR > 0.11)."""
    green = values[:, CANOPY_BANDS.index("green")]
    swir = values[:, CANOPY_BANDS.index("swir16")]
    nir = values[:, CANOPY_BANDS.index("nir08")]
    with np.errstate(invalid="ignore", divide="ignore"):
        ndsi = (green - swir) / (green + swir)
    return (ndsi > 0.4) & (nir > 0.11)


def _nan_median_axis0(block: np.ndarray) -> np.ndarray:
    """Median over axis 0 ignoring NaN, vectorised (NaN where all are NaN)."""
    count = np.isfinite(block).sum(axis=0)
    ordered = np.sort(block, axis=0)  # NaN sort last
    low = np.take_along_axis(ordered, np.maximum((count - 1) // 2, 0)[None], axis=0)[0]
    high = np.take_along_axis(ordered, np.maximum(count // 2, 0)[None], axis=0)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        median = np.where(count > 0, 0.5 * (low + high), np.nan)
    return median.astype("float32")


def _fill_circular(composite: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Fill unobserved months by linear interpolation between the nearest observed months,
    wrapping around the year; pixels with no observed month stay NaN."""
    n_months = composite.shape[0]
    index = np.arange(3 * n_months)[:, None]
    observed3 = np.tile(observed, (3, 1))
    previous = np.maximum.accumulate(np.where(observed3, index, -1), axis=0)[n_months:-n_months]
    following = np.where(observed3, index, 10 * n_months)
    following = np.minimum.accumulate(following[::-1], axis=0)[::-1][n_months:-n_months]
    has_data = observed.any(axis=0)
    previous = np.where(has_data, previous, 0)
    following = np.where(has_data, following, 0)
    values3 = np.tile(composite, (3, 1, 1))
    before = np.take_along_axis(values3, previous[:, None, :], axis=0)
    after = np.take_along_axis(values3, following[:, None, :], axis=0)
    span = (following - previous).astype("float32")
    here = np.arange(n_months, 2 * n_months)[:, None]
    weight = np.where(span > 0, (here - previous) / np.where(span > 0, span, 1), 0.0)
    filled = before + weight[:, None, :].astype("float32") * (after - before)
    filled[:, :, ~has_data] = np.nan
    return filled.astype("float32")


def _crs_of(dataset: xr.Dataset | xr.DataArray):
    """The CRS of a dataset from its ``spatial_ref`` coordinate (or rioxarray), else None."""
    from pyproj import CRS

    if "spatial_ref" in dataset.coords:
        attrs = dataset.coords["spatial_ref"].attrs
        for key in ("crs_wkt", "spatial_ref"):
            if attrs.get(key):
                return CRS.from_user_input(attrs[key])
        if "epsg" in attrs:
            return CRS.from_epsg(int(attrs["epsg"]))
    try:
        import rioxarray  # noqa: F401  (registers the .rio accessor)

        crs = dataset.rio.crs
    except Exception:  # rioxarray not usable on this object
        return None
    return None if crs is None else CRS.from_user_input(crs.to_wkt())
