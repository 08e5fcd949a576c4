"""Open water in Sentinel-1 backscatter by hierarchical split-based thresholding.

Method: calm open water is a specular reflector and appears as a dark mode in the dB
histogram of gamma0, but a scene-wide histogram is dominated by land, so the threshold is
found on tiles that hold both classes. Following the hierarchical split-based approach
(Chini et al. 2017, IEEE TGRS 55:6975, after Martinis et al. 2009, NHESS 9:303 and
Martinis et al. 2015, ISPRS JPRS 104:203), the scene is split as a quadtree; a tile is
selected when a two-Gaussian fit of its dB histogram is clearly bimodal (Ashman's D >= 2,
a valley between the peaks, each class >= 10% of the tile, the dark class darker than a
physical bound for open water) and is not split further. The pixels of all selected tiles
are pooled and fitted once more; the water probability of a pixel is the posterior of the
dark component (a minimum-error split as in Kittler & Illingworth 1986). Where no tile is
bimodal (water in thin or scattered bodies, skewed histograms) the global Kittler &
Illingworth split and then the physical dark mode (pixels below the polarisation's
plausible threshold, `THRESHOLD_MAX_DB`) are tried under the same checks, so the result is
never worse than a global split; a water-free scene, whose speckle histogram is unimodal
and has no plausibly dark mode, passes none and gets no water instead of the water a plain
Otsu split would invent. VV and VH are fitted alike; on a single date the polarisation whose
water mode is most plausibly water decides (`best_polarisation`), since wind roughens water in VV far more
than in VH. Works in dB; linear gamma0 (RTC) is
converted, then a 3x3 median reduces speckle while keeping water edges (Lee & Pottier 2009).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace

import numpy as np
from scipy import ndimage

from geoproc.products.thresholds import (
    GaussianPair,
    fit_gaussian_pair,
    kittler_illingworth_threshold,
)

# Upper bound of the open-water class mean (dB) per polarisation: calm open water is
# typically -18 to -25 dB in VV and -24 to -30 dB in VH, a light breeze lifts VV by a few dB
# (Martinis et al. 2015, Twele et al. 2016); smooth dry soil, the usual look-alike, sits at
# VV -12 to -17, VH -20 to -23, so the VH bound stays below it.
WATER_MAX_DB = {"vv": -17.0, "vh": -23.0}
# Upper bound of a plausible water/land decision threshold (dB): published Sentinel-1 water
# thresholds lie below about -15 dB in VV and -20 dB in VH (Twele et al. 2016; Martinis et al.
# 2015; Bioresita et al. 2018, Remote Sens. 10:1286 use -18 to -20 VV, -24 to -26 VH). A fit
# whose threshold lies above the bound cannot call a brighter pixel water.
THRESHOLD_MAX_DB = {"vv": -15.0, "vh": -20.0}
NO_SPLIT_PROBABILITY = 0.02
ABOVE_THRESHOLD_BOUND_PROBABILITY = 0.3
"""Highest water probability of a pixel brighter than `THRESHOLD_MAX_DB` (not water)."""
MIN_DARK_MODE_FRACTION = 0.003
"""Share of valid pixels a dark mode needs before the fallback splits calls it water."""


@dataclass(frozen=True)
class SplitOptions:
    """Tile selection rules of the hierarchical split."""

    min_tile: int | None = None
    """Smallest tile edge in pixels; None: 1/32 of the shorter image edge, at least 32, which
    bounds the quadtree to six levels on any image size."""
    min_valid_fraction: float = 0.5
    """A tile must have at least this fraction of valid pixels to be tested."""
    ashman_d: float = 2.0
    """Minimum Ashman's D of the fitted pair (Chini et al. 2017 use 2)."""
    max_valley_ratio: float = 0.8
    """Mixture density at the valley over the lower peak must be below this."""
    min_class_fraction: float = 0.1
    """Each class must cover at least this fraction of a selected tile."""
    min_separation_db: float = 3.0
    """The two class means must be at least this far apart (dB)."""
    water_max_db: float = -17.0
    """The dark class mean must be below this (dB) to be open water (the polarisation's own
    bound, `WATER_MAX_DB`, applies too)."""
    min_water_pixels: int = 10
    """SAR water bodies (8-connected) smaller than this are not mapped: a minimum mapping
    unit (0.1 ha at 10 m) against speckle and single dark parcels' fringes; 0 turns it off."""
    fallback: bool = True
    """Without a bimodal tile, try a global Kittler-Illingworth split and then the physical
    dark mode (pixels below `THRESHOLD_MAX_DB`), each under the same water/land checks."""


@dataclass
class SplitResult:
    """The outcome of the split-based fit for one image."""

    fit: GaussianPair | None
    """Pooled water/land mixture, None when no tile was bimodal."""
    tiles: list[tuple[int, int, int, int]] = field(default_factory=list)
    """Selected tiles as (row0, row1, col0, col1)."""
    method: str = "none"
    """How the fit was found: `tiles`, `global` (KI split), `dark_mode`, `all_dark` or `none`."""

    @property
    def threshold_db(self) -> float:
        """dB value where water and land are equally likely (NaN when there is no split)."""
        return self.fit.decision_threshold() if self.fit is not None else float("nan")


def guess_units(backscatter: np.ndarray) -> str:
    """`db` when the median backscatter is negative, else `linear`.

    The median, not the minimum: thermal-noise-removed GRD (and some RTC) products hold
    a few zero or slightly negative *linear* values over calm water, which a "any negative
    value means dB" rule reads as dB. Land and water sigma0 are -5 to -30 dB (0.001-0.3
    linear), so only a chip of nothing but strong urban scatterers has a median >= 0 dB.
    """
    x = np.asarray(backscatter, dtype=np.float32)
    step = max(1, int(np.sqrt(x.size / 65536)))  # a thinned sample is plenty for a median
    sample = x[(slice(None, None, step),) * x.ndim] if x.ndim else x
    finite = sample[np.isfinite(sample)]
    return "db" if finite.size and float(np.median(finite)) < 0.0 else "linear"


def to_db(backscatter: np.ndarray, *, units: str = "auto") -> np.ndarray:
    """Backscatter in dB; ``units`` is `linear`, `db` or `auto` (`guess_units`).

    Linear values <= 0 (no data, or noise-subtracted power) become NaN, and so do exact
    zeros in dB: exports that cannot hold NaN (e.g. Earth Engine GeoTIFFs) fill with 0, and
    a real backscatter is never exactly 0.0 dB.
    """
    x = np.asarray(backscatter, dtype=np.float32)
    if units == "auto":
        units = guess_units(x)
    if units == "db":
        return np.where(x == 0.0, np.nan, x).astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x > 0, 10.0 * np.log10(x), np.nan).astype(np.float32)


def despeckle_db(db: np.ndarray, *, window: int = 3) -> np.ndarray:
    """Median of the dB values over ``window`` x ``window``, ignoring NaN; NaN stays NaN.

    A median rather than a boxcar: a boxcar of linear power lets one bright land pixel
    outweigh eight dark water pixels and eats the banks of every water body, while the
    median keeps edges where they are and still removes most of the speckle.
    """
    x = np.asarray(db, dtype=np.float32)
    if window <= 1:
        return x
    nan = ~np.isfinite(x)
    out = ndimage.median_filter(np.where(nan, 0.0, x), size=window, mode="nearest")
    r = window // 2
    # Pixels next to no data or to the image edge take the slower NaN-aware median.
    near = (
        ndimage.binary_dilation(nan, structure=np.ones((window, window), bool))
        if nan.any()
        else nan.copy()
    )
    near[:r], near[-r:], near[:, :r], near[:, -r:] = True, True, True, True
    near &= ~nan
    if near.any():
        padded = np.pad(x, r, mode="constant", constant_values=np.nan)
        rows, cols = np.nonzero(near)
        offsets = np.arange(-r, r + 1)
        neigh = padded[
            (rows[:, None, None] + r + offsets[None, :, None]),
            (cols[:, None, None] + r + offsets[None, None, :]),
        ].reshape(rows.size, -1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            out[rows, cols] = np.nanmedian(neigh, axis=1)
    return np.where(nan, np.nan, out).astype(np.float32)


def split_based_fit(
    db: np.ndarray, *, options: SplitOptions = SplitOptions(), pol: str = "vv"
) -> SplitResult:
    """Water/land fit of one image: bimodal tiles first, then the fallbacks.

    1. Quadtree tiles whose histogram is bimodal, pooled and fitted once more (Chini et al.
       2017; Martinis et al. 2015 select tiles the same way before a KI threshold).
    2. Without such a tile (water in thin or scattered bodies, a skewed histogram): the
       global Kittler-Illingworth split, which follows a small dark class better than Otsu.
    3. Then the physical dark mode: the pixels below the polarisation's threshold bound.
    Each candidate must pass the same checks (water mode darker than the physical bound,
    clearly apart from land, Ashman's D); a water-free scene passes none and stays dry.
    """
    opt = replace(options, water_max_db=min(options.water_max_db, WATER_MAX_DB.get(pol, -17.0)))
    img = np.asarray(db, dtype=np.float32)
    tiles: list[tuple[int, int, int, int]] = []
    min_tile = opt.min_tile or max(32, min(img.shape) // 32)
    _descend(img, 0, img.shape[0], 0, img.shape[1], opt, min_tile, tiles)
    if tiles:
        pooled = np.concatenate([img[r0:r1, c0:c1].ravel() for r0, r1, c0, c1 in tiles])
        fit = fit_gaussian_pair(pooled)
        if fit is not None and _is_water_land_pair(fit, opt):
            return SplitResult(fit=fit, tiles=tiles, method="tiles")
    if not opt.fallback:
        return SplitResult(fit=None, tiles=tiles)
    values = img[np.isfinite(img)]
    if values.size < 64:
        return SplitResult(fit=None, tiles=tiles)
    relaxed = replace(opt, min_class_fraction=MIN_DARK_MODE_FRACTION)
    for method, t in (
        ("global", kittler_illingworth_threshold(values)),
        ("dark_mode", THRESHOLD_MAX_DB.get(pol, -15.0)),
    ):
        fit = pair_from_threshold(values, t)
        if fit is not None and _is_water_land_pair(fit, relaxed):
            return SplitResult(fit=fit, tiles=tiles, method=method)
    fit = _all_dark(values, pol, opt)
    if fit is not None:
        return SplitResult(fit=fit, tiles=tiles, method="all_dark")
    return SplitResult(fit=None, tiles=tiles)


ALL_DARK_SHARE = 0.97
"""Share of pixels below the threshold bound that makes a chip "nearly all water"."""
ALL_DARK_MARGIN_DB = 3.0
"""How far below the water-mean bound such a chip's mean must lie (calm open water, not a
landscape darkened by wet snow or drought, which stays within a few dB of the bound)."""


def _all_dark(values: np.ndarray, pol: str, opt: SplitOptions) -> GaussianPair | None:
    """A chip that is (nearly) all open water has no land mode to split against.

    Lake interiors, sea and flooded plains can fill a 5 km chip. When nearly every pixel is
    below the plausible threshold and their mean is well below the water bound, the water
    class is those pixels and land gets a nominal class above the bound (never fitted).
    """
    bound = THRESHOLD_MAX_DB.get(pol, -15.0)
    dark = values[values < bound]
    if dark.size < ALL_DARK_SHARE * values.size:
        return None
    if float(dark.mean()) > opt.water_max_db - ALL_DARK_MARGIN_DB:
        return None
    land_share = max(1.0 - dark.size / values.size, 1e-3)
    return GaussianPair(
        mean=(float(dark.mean()), bound + opt.min_separation_db + 3.0),
        std=(max(float(dark.std()), 0.1), 2.0),
        weight=(1.0 - land_share, land_share),
    )


def pair_from_threshold(values: np.ndarray, threshold: float) -> GaussianPair | None:
    """Moments of the values on each side of ``threshold`` as a two-Gaussian pair."""
    if not np.isfinite(threshold):
        return None
    low, high = values[values < threshold], values[values >= threshold]
    if low.size < 16 or high.size < 16:
        return None
    n = values.size
    return GaussianPair(
        mean=(float(low.mean()), float(high.mean())),
        std=(max(float(low.std()), 0.1), max(float(high.std()), 0.1)),
        weight=(low.size / n, high.size / n),
    )


def cap_above_bound(p: np.ndarray, db: np.ndarray, pol: str) -> np.ndarray:
    """Water probability of pixels brighter than the physical threshold bound kept below 0.5."""
    bound = THRESHOLD_MAX_DB.get(pol, -15.0)
    with np.errstate(invalid="ignore"):
        return np.where(db > bound, np.minimum(p, ABOVE_THRESHOLD_BOUND_PROBABILITY), p).astype(
            np.float32
        )


SMALL_WATER_PROBABILITY = 0.4
"""Water probability left to a dark blob below the minimum mapping unit (not water)."""


def drop_small_water(p: np.ndarray, *, min_pixels: int) -> np.ndarray:
    """Water (p >= 0.5) in 8-connected bodies smaller than ``min_pixels`` lowered below 0.5.

    A minimum mapping unit, as operational SAR flood services apply one (e.g. the DLR
    TerraSAR-X / Sentinel-1 flood service, Martinis et al. 2015), so isolated speckle or
    the dark fringe of a field is not reported as water.
    """
    if min_pixels <= 1:
        return p
    labels, _ = ndimage.label(p >= 0.5, structure=np.ones((3, 3), bool))
    sizes = np.bincount(labels.ravel())
    small = sizes < min_pixels
    small[0] = False
    return np.where(small[labels], np.minimum(p, SMALL_WATER_PROBABILITY), p).astype(np.float32)


def best_polarisation(results: dict[str, SplitResult]) -> str | None:
    """The polarisation whose water mode is most plausibly open water, or None.

    Plausibility is how far the fitted dark mode lies below the polarisation's physical
    bound for water (`WATER_MAX_DB`), in units of its own spread: a mode just under the
    bound may be dark soil or breeze-roughened water seen poorly, one far below it is
    calm water. VV and VH are judged alike and neither is required: wind roughens water
    in VV far more than in VH (Martinis et al. 2015), so a scene's water may be dark in
    one only.
    """
    margin = {
        pol: (WATER_MAX_DB.get(pol, -17.0) - r.fit.mean[0]) / max(r.fit.std[0], 0.1)
        for pol, r in results.items()
        if r.fit is not None
    }
    return max(margin, key=margin.get) if margin else None


def water_probability(db: np.ndarray, split: SplitResult, *, pol: str = "vv") -> np.ndarray:
    """Posterior water probability per pixel (NaN where ``db`` is NaN)."""
    x = np.asarray(db, dtype=np.float32)
    if split.fit is None:
        p = np.full(x.shape, NO_SPLIT_PROBABILITY, dtype=np.float32)
    else:
        p = cap_above_bound(split.fit.posterior_low(x.astype(np.float64)), x, pol)
    return np.where(np.isfinite(x), p, np.nan).astype(np.float32)


def _descend(
    img: np.ndarray, r0: int, r1: int, c0: int, c1: int, opt: SplitOptions, min_tile: int, out: list
) -> None:
    tile = img[r0:r1, c0:c1]
    valid = np.isfinite(tile)
    if valid.mean() >= opt.min_valid_fraction and valid.sum() >= 64:
        values = tile[valid]
        # Two classes min_separation_db apart cannot hide in a histogram narrower than this.
        if float(values.std()) >= 0.3 * opt.min_separation_db:
            fit = fit_gaussian_pair(values, bins=128, iterations=60)
            if fit is not None and _is_water_land_pair(fit, opt):
                out.append((r0, r1, c0, c1))
                return
    h, w = r1 - r0, c1 - c0
    if h < 2 * min_tile or w < 2 * min_tile:
        return
    rm, cm = r0 + h // 2, c0 + w // 2
    for a, b in ((r0, rm), (rm, r1)):
        for c, d in ((c0, cm), (cm, c1)):
            _descend(img, a, b, c, d, opt, min_tile, out)


def _is_water_land_pair(fit: GaussianPair, opt: SplitOptions) -> bool:
    return (
        fit.ashman_d >= opt.ashman_d
        and min(fit.weight) >= opt.min_class_fraction
        and fit.mean[1] - fit.mean[0] >= opt.min_separation_db
        and fit.mean[0] <= opt.water_max_db
        and fit.valley_ratio() <= opt.max_valley_ratio
    )
