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
dark component (a minimum-error split as in Kittler & Illingworth 1986). A scene where no
tile is bimodal - a water-free scene, whose speckle histogram is unimodal - gets no water,
instead of the water a plain Otsu split would invent. Works in dB; linear gamma0 (RTC) is
converted, then a 3x3 median reduces speckle while keeping water edges (Lee & Pottier 2009).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from geoproc.products.thresholds import GaussianPair, fit_gaussian_pair

# Upper bound of the open-water class mean (dB) per polarisation: open water is typically
# -18 to -25 dB in VV and below -22 dB in VH (Martinis et al. 2015, Twele et al. 2016).
WATER_MAX_DB = {"vv": -18.0, "vh": -22.0}
NO_SPLIT_PROBABILITY = 0.02


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
    water_max_db: float = -18.0
    """The dark class mean must be below this (dB) to be open water."""


@dataclass
class SplitResult:
    """The outcome of the split-based fit for one image."""

    fit: GaussianPair | None
    """Pooled water/land mixture, None when no tile was bimodal."""
    tiles: list[tuple[int, int, int, int]] = field(default_factory=list)
    """Selected tiles as (row0, row1, col0, col1)."""

    @property
    def threshold_db(self) -> float:
        """dB value where water and land are equally likely (NaN when there is no split)."""
        return self.fit.decision_threshold() if self.fit is not None else float("nan")


def to_db(backscatter: np.ndarray, *, units: str = "auto") -> np.ndarray:
    """Backscatter in dB; ``units`` is `linear`, `db` or `auto` (negative values mean dB)."""
    x = np.asarray(backscatter, dtype=np.float32)
    if units == "auto":
        finite = x[np.isfinite(x)]
        units = "db" if finite.size and float(finite.min()) < 0.0 else "linear"
    if units == "db":
        return x
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


def split_based_fit(db: np.ndarray, *, options: SplitOptions = SplitOptions()) -> SplitResult:
    """Find bimodal tiles by quadtree splitting and fit water/land on their pooled pixels."""
    img = np.asarray(db, dtype=np.float32)
    tiles: list[tuple[int, int, int, int]] = []
    min_tile = options.min_tile or max(32, min(img.shape) // 32)
    _descend(img, 0, img.shape[0], 0, img.shape[1], options, min_tile, tiles)
    if not tiles:
        return SplitResult(fit=None)
    pooled = np.concatenate([img[r0:r1, c0:c1].ravel() for r0, r1, c0, c1 in tiles])
    fit = fit_gaussian_pair(pooled)
    if fit is None or not _is_water_land_pair(fit, options):
        return SplitResult(fit=None, tiles=tiles)
    return SplitResult(fit=fit, tiles=tiles)


def water_probability(db: np.ndarray, split: SplitResult) -> np.ndarray:
    """Posterior water probability per pixel (NaN where ``db`` is NaN)."""
    x = np.asarray(db, dtype=np.float32)
    if split.fit is None:
        p = np.full(x.shape, NO_SPLIT_PROBABILITY, dtype=np.float32)
    else:
        p = split.fit.posterior_low(x.astype(np.float64)).astype(np.float32)
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
