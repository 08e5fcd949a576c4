"""Per-pixel temporal statistics of a masked optical series, whatever bands and dates it has.

Why: a tree-type decision that must hold on any sensor (S2 L2A, HLS), any revisit (a dense
cloudy series or four seasonal medians), any band subset and either hemisphere cannot rest
on a fixed calendar or on one sensor's spectra. Following the percentile / phenology
metrics of the global forest maps (Hansen et al. 2013, Science 342:850; Potapov et al.
2021, GLAD ARD phenology metrics, Remote Sens. 12:426), each pixel's clear observations of
one year are reduced to order statistics of NDVI (p10, p25, p50, p75, p90), medians of the
four hemisphere-aligned seasons (DJF/MAM/JJA/SON with the day of year shifted by 182 days
south of the equator), and the median reflectance of the leaf-on observations (NDVI in the
pixel's top quartile). These statistics exist for every sampling: for four seasonal
medians a percentile is an interpolation between dates, a missing season is NaN, and a
missing band gives NaN for its statistics only.

Snow is screened before anything else when green and swir16 are present (NDSI > 0.4 with
NIR > 0.11, Hall et al. 1995, Remote Sens. Environ. 54:127): snow on an evergreen canopy
would otherwise read as leaf-off.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np

from geoproc.products.canopy.composites import aligned_month

SPECTRAL_BANDS = ("blue", "green", "red", "nir", "swir16", "swir22")
"""Leaf-on reflectance statistics kept (``nir`` is nir08 where present, else the broad nir)."""
PERCENTILES = (10, 25, 50, 75, 90)
SEASONS = ("djf", "mam", "jja", "son")
_SEASON_OF_MONTH = np.array([0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 0])


def pixel_ndvi(bands: Mapping[str, np.ndarray]) -> np.ndarray:
    """NDVI (time, pixels) from red and nir08 (or nir), or the given ``ndvi`` variable."""
    nir = bands.get("nir08", bands.get("nir"))
    if nir is not None and "red" in bands:
        with np.errstate(invalid="ignore", divide="ignore"):
            ndvi = (nir - bands["red"]) / (nir + bands["red"])
        return np.where(np.abs(ndvi) <= 1, ndvi, np.nan).astype("float32")
    return np.asarray(bands["ndvi"], dtype="float32")


def temporal_metrics(
    bands: Mapping[str, np.ndarray], times: np.ndarray, *, shift_days: np.ndarray | int = 0
) -> dict[str, np.ndarray]:
    """Statistics per pixel from ``bands`` (name -> (time, pixels) float, NaN = masked).

    Returns (pixels,) float32 arrays: ``clear_count``, ``months_observed`` (of the 12
    aligned months), ``seasons_covered`` (of 4), ``ndvi_p10`` .. ``ndvi_p90``,
    ``ndvi_djf`` .. ``ndvi_son`` (aligned seasons), ``ndvi_leaf_on`` (median NDVI of the
    top quartile), ``ndvi_leaf_off`` (lowest of the aligned winter and spring medians, else
    p10), ``leaf_off_contrast`` (leaf-on minus leaf-off), ``winter_contrast`` and
    ``spring_contrast`` (leaf-on minus the aligned DJF / MAM median), and ``{band}_leaf_on``
    for the bands present. A pixel with no clear observation has NaN everywhere but the count.
    """
    ndvi = pixel_ndvi(bands)
    n_time, n_pix = ndvi.shape
    present = {b: np.asarray(v, dtype="float32") for b, v in bands.items() if b != "ndvi"}
    if "nir08" in present:
        present["nir"] = present.pop("nir08")
    clear = np.isfinite(ndvi)
    for values in present.values():
        clear &= np.isfinite(values)
    if "green" in present and "swir16" in present and "nir" in present:
        with np.errstate(invalid="ignore", divide="ignore"):
            ndsi = (present["green"] - present["swir16"]) / (present["green"] + present["swir16"])
        clear &= ~((ndsi > 0.4) & (present["nir"] > 0.11))
    ndvi = np.where(clear, ndvi, np.nan)
    out: dict[str, np.ndarray] = {"clear_count": clear.sum(axis=0).astype("float32")}
    ordered = np.sort(ndvi, axis=0)
    count = clear.sum(axis=0)
    for q in PERCENTILES:
        out[f"ndvi_p{q}"] = _quantile_of_sorted(ordered, count, q / 100.0)
    shifts = np.broadcast_to(np.asarray(shift_days, dtype="int64"), (n_pix,))
    observed = np.zeros((12, n_pix), dtype=bool)
    for shift in np.unique(np.maximum(shifts, 0)):
        pixels = np.flatnonzero(np.maximum(shifts, 0) == shift)
        months = aligned_month(times, shift_days=int(shift))
        for month in np.unique(months):
            observed[month, pixels] = clear[np.ix_(months == month, pixels)].any(axis=0)
    out["months_observed"] = observed.sum(axis=0).astype("float32")
    out["seasons_covered"] = (
        np.stack([observed[_SEASON_OF_MONTH == s].any(axis=0) for s in range(4)])
        .sum(axis=0)
        .astype("float32")
    )
    seasonal = np.full((4, n_pix), np.nan, dtype="float32")
    for shift in np.unique(shifts[shifts >= 0]):  # a negative shift: hemisphere unknown
        pixels = np.flatnonzero(shifts == shift)
        season = _SEASON_OF_MONTH[aligned_month(times, shift_days=int(shift))]
        for s in range(4):
            steps = np.flatnonzero(season == s)
            if steps.size:
                block = np.sort(ndvi[np.ix_(steps, pixels)], axis=0)
                seasonal[s, pixels] = _quantile_of_sorted(
                    block, np.isfinite(block).sum(axis=0), 0.5
                )
    for s, name in enumerate(SEASONS):
        out[f"ndvi_{name}"] = seasonal[s]
    leaf_on = clear & (ndvi >= out["ndvi_p75"][None] - 1e-6)
    out["ndvi_leaf_on"] = _masked_median(ndvi, leaf_on)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        off = np.nanmin(seasonal[:2], axis=0)
    out["ndvi_leaf_off"] = np.where(np.isfinite(off), off, out["ndvi_p10"]).astype("float32")
    out["leaf_off_contrast"] = (out["ndvi_leaf_on"] - out["ndvi_leaf_off"]).astype("float32")
    out["winter_contrast"] = (out["ndvi_leaf_on"] - out["ndvi_djf"]).astype("float32")
    out["spring_contrast"] = (out["ndvi_leaf_on"] - out["ndvi_mam"]).astype("float32")
    for band in SPECTRAL_BANDS:
        if band in present:
            out[f"{band}_leaf_on"] = _masked_median(present[band], leaf_on)
    return out


def _quantile_of_sorted(ordered: np.ndarray, count: np.ndarray, q: float) -> np.ndarray:
    """Linear-interpolated quantile of each column of an ascending, NaN-last array."""
    position = np.maximum(count - 1, 0) * q
    low = np.floor(position).astype("int64")
    high = np.minimum(low + 1, np.maximum(count - 1, 0))
    a = np.take_along_axis(ordered, low[None], axis=0)[0]
    b = np.take_along_axis(ordered, high[None], axis=0)[0]
    value = a + (position - low) * (b - a)
    return np.where(count > 0, value, np.nan).astype("float32")


def _masked_median(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Median over time of ``values`` where ``mask`` (time, pixels); NaN where none."""
    picked = np.sort(np.where(mask, values, np.nan), axis=0)
    return _quantile_of_sorted(picked, mask.sum(axis=0), 0.5)
