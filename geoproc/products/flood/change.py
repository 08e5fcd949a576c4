"""Sentinel-1 change against each pixel's own reference backscatter: new water must darken.

Method: change detection for SAR flood mapping compares a flood image with a reference
image of normal conditions (Schlaffer et al. 2015, Int. J. Appl. Earth Obs. 38:15; Chini
et al. 2017, IEEE TGRS 55:6975 split the log-ratio image; the GFM ensemble, Salamon et al.
2021, combines the same change evidence with the flood image's own thresholding). Here the
reference is the per-pixel temporal median of the cube's own Sentinel-1 dates (or of the
dates in the user's reference window): floods cover a small share of the dates and do not
move the median, while the time series removes the speckle without blurring narrow
features. A pixel whose backscatter is water-dark *today* but whose reference is
land-bright is new (flood) water only if it darkened by at least ``min_drop_db`` (3 dB is
the usual log-ratio threshold): smooth dry fields, sand and tarmac on a dry day lose a
couple of dB, calm flood water 8-10 dB. Pixels whose reference is itself water-dark are
left alone (they are reference water), as are pixels the optical history calls water.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import ndimage

UNCHANGED_DARK_PROBABILITY = 0.3
"""Water probability left to a dark pixel that did not darken: below 0.5 (not water), but
well above the no-water floor, because the evidence conflicts (DSWx "low confidence")."""


def reference_backscatter(db_stack: np.ndarray, *, min_dates: int = 4) -> np.ndarray:
    """Per-pixel temporal median of a (time, y, x) dB stack; NaN with fewer than ``min_dates``."""
    x = np.asarray(db_stack, dtype=np.float32)
    n = np.isfinite(x).sum(axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ref = np.nanmedian(x, axis=0)
    return np.where(n >= max(min_dates, 1), ref, np.nan).astype(np.float32)


def unchanged_dark(
    water: np.ndarray,
    db: np.ndarray,
    reference: np.ndarray,
    *,
    water_max_db: float = -18.0,
    min_drop_db: float = 3.0,
    window: int = 3,
) -> np.ndarray:
    """True where ``water`` is set, the reference is land (brighter than ``water_max_db``, the
    physical upper bound of calm open water, `flood_sar.WATER_MAX_DB`) and the pixel is less
    than ``min_drop_db`` darker than its reference: not a change, so not new water.

    The change is averaged over ``window`` x ``window`` valid pixels, because a one-date
    difference carries the speckle of that date (log-ratio images are filtered before
    thresholding for the same reason, Bazi et al. 2005, IEEE TGRS 43:874).
    """
    change = local_mean(np.asarray(db, np.float64) - np.asarray(reference, np.float64), window)
    with np.errstate(invalid="ignore"):
        land_reference = np.isfinite(reference) & (reference > water_max_db)
        small_drop = change > -min_drop_db
    return np.asarray(water, bool) & land_reference & small_drop & np.isfinite(db)


def local_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Mean of the finite values over ``window`` x ``window`` (NaN where the pixel is NaN)."""
    x = np.asarray(values, np.float64)
    ok = np.isfinite(x)
    if window <= 1:
        return np.where(ok, x, np.nan)
    total = ndimage.uniform_filter(np.where(ok, x, 0.0), size=window, mode="constant")
    count = ndimage.uniform_filter(ok.astype(np.float64), size=window, mode="constant")
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ok, total / count, np.nan)
