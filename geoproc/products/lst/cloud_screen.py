"""Residual-cloud screen and near-cloud uncertainty for LST: what Fmask leaves behind.

Fmask misses a few percent of cloud pixels (thin edges, small cumulus; Foga et al. 2017,
Remote Sens. Environ. 194:379), and a missed cloud reads several kelvin cold. Two remedies,
both from the literature and both conservative, so that real cold surfaces keep their LST:

1. Residual-cloud test, in the spirit of Fmask's potential-cloud-pixel and temperature tests
   (Zhu & Woodcock 2012, Remote Sens. Environ. 118:83, eqs. 1-3 and 8-10): a pixel Fmask
   left clear is called cloud only when it is BOTH spectrally cloud-like (basic test:
   SWIR2 > 0.03, BT < 27 degC, NDSI < 0.8, NDVI < 0.8; whiteness < 0.7; haze-optimised
   transform HOT = blue - 0.5 red - 0.08 > 0, Zhang et al. 2002; NIR / SWIR1 > 0.75) AND
   colder than the coldest clear land of its scene: BT < T_low - 4 K, with T_low the 17.5th
   percentile of the BT of clear land (Fmask's temperature probability above 1). Water and
   snow/ice never enter the test (they are cold for real, and Fmask treats them apart), and
   a scene with too little clear land to give a percentile is not tested at all.
2. Uncertainty that grows near clouds, as in the USGS Landsat Collection 2 ST product, whose
   ST_QA grows with the distance to the nearest cloud (ST_CDIST; Laraby & Schott 2018,
   Remote Sens. Environ. 216:472; Cook et al. 2014, Remote Sens. 6:11244). On request
   (``near_cloud_sigma_k``, off by default since the USGS ST shares that error) we add
   ``sigma_cloud = A exp(-d / L)`` in quadrature, with ``d`` the distance to the nearest
   Fmask cloud / adjacent / shadow pixel. A = 5 K and L = 3 km reproduce the ST_QA of the
   real Landsat 8 C2 L2 Greenland scene (median 5.4 K within 600 m of cloud, 2.6 K at 2-4 km,
   1.5 K beyond 16 km, measured in `tests/products/lst/test_lst_cloud_screen.py`).

A temporal test against each pixel's own clear history was measured on the sample archive
and did not do better (see the module's tests and the README), so it is not used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr
from scipy import ndimage

from geoproc.catalog.sensors import FMASK_BITS, FMASK_NODATA
from geoproc.errors import UsageError

USGS_ST_QA_NEAR_CLOUD_K = 5.0
"""`CloudScreen.near_cloud_sigma_k` that reproduces the ST_QA of a real L8 C2 L2 scene."""
CLOUD_BITS = ("cloud", "adjacent_cloud", "cloud_shadow")
"""Fmask bits a cloud distance is measured from."""


@dataclass(frozen=True)
class CloudScreen:
    """Parameters of the residual-cloud test and of the near-cloud uncertainty."""

    percentile: float = 17.5
    """Percentile of clear-land BT taken as T_low (Zhu & Woodcock 2012)."""
    margin_k: float = 4.0
    """Kelvin below T_low before a pixel is too cold to be clear land (Zhu & Woodcock 2012)."""
    min_clear_land: int = 100
    """Fewest clear land pixels a scene needs for a T_low; fewer and the scene is not tested."""
    hot_min: float = 0.0
    """HOT above which a pixel is hazy or cloudy (Zhang et al. 2002)."""
    whiteness_max: float = 0.7
    """Whiteness (visible flatness) below which a pixel is cloud-white (Zhu & Woodcock 2012)."""
    nir_swir_min: float = 0.75
    """NIR / SWIR1 above which a pixel is not bright rock or soil (Zhu & Woodcock 2012)."""
    near_cloud_sigma_k: float = 0.0
    """Extra one-sigma LST uncertainty at the edge of a cloud (K); 0 (default) turns it off.

    `USGS_ST_QA_NEAR_CLOUD_K` (5 K) reproduces the USGS ST_QA near clouds: it describes cloud
    contamination of the radiance itself, which every retrieval from that radiance shares
    (the USGS ST included), so it is off by default and the stated sigma is the retrieval's
    own error (issue 16: 60-75 % of real errors within 1 sigma). Turn it on for an error
    budget against ground truth."""
    near_cloud_length_m: float = 3000.0
    """e-folding distance of the extra uncertainty (m)."""
    near_cloud_m: float = 1000.0
    """Pixels closer than this to a Fmask cloud get the `near_cloud` QA bit."""

    def __post_init__(self) -> None:
        if not 0.0 < self.percentile < 50.0:
            raise UsageError(
                f"cloud screen percentile must lie in (0, 50); got {self.percentile} "
                "(Fmask uses 17.5)."
            )
        if self.margin_k < 0 or self.near_cloud_sigma_k < 0 or self.near_cloud_m < 0:
            raise UsageError(
                "cloud screen margin_k, near_cloud_sigma_k and near_cloud_m must be >= 0; got "
                f"{self.margin_k}, {self.near_cloud_sigma_k}, {self.near_cloud_m}."
            )
        if self.near_cloud_length_m <= 0:
            raise UsageError(
                f"near_cloud_length_m must be > 0 metres; got {self.near_cloud_length_m}."
            )


def cloud_distance(fmask: xr.DataArray, *, pixel_size_m: float) -> xr.DataArray:
    """Distance (m) from each pixel to the nearest Fmask cloud, adjacent or shadow pixel.

    Infinite in a scene without any flagged cloud; Fmask fill counts as no cloud.
    """
    bits = fmask.fillna(FMASK_NODATA).astype("uint16")
    mask = sum(1 << FMASK_BITS[b] for b in CLOUD_BITS)
    cloudy = (bits != FMASK_NODATA) & ((bits & mask) > 0)
    return _per_scene(_distance_2d, cloudy, dtype="float64", pixel_size_m=pixel_size_m)


def near_cloud_sigma(distance_m: xr.DataArray, *, screen: CloudScreen) -> xr.DataArray:
    """Extra one-sigma LST uncertainty (K) from the cloud distance: ``A exp(-d / L)``."""
    return screen.near_cloud_sigma_k * np.exp(-distance_m / screen.near_cloud_length_m)


def residual_cloud(
    bt: xr.DataArray,
    *,
    blue: xr.DataArray,
    red: xr.DataArray,
    land: xr.DataArray,
    screen: CloudScreen,
    green: xr.DataArray | None = None,
    nir08: xr.DataArray | None = None,
    swir16: xr.DataArray | None = None,
    swir22: xr.DataArray | None = None,
    t_low: np.ndarray | None = None,
) -> xr.DataArray:
    """True where a pixel Fmask left clear is spectrally cloud-like and colder than clear land.

    `bt` is TOA brightness temperature (K), the optical bands are reflectance, `land` is
    True on land that is neither water nor snow/ice. Tests whose bands are missing are
    skipped; HOT (blue, red) and the cold test are always required. ``t_low``: each scene's
    T_low when computed elsewhere (over the whole scene while `bt` is one block of it,
    `scene_t_low`), one per leading index of `bt`; NaN: the scene is not tested.
    """
    arrays = _screen_arrays(bt, blue, red, green, nir08, swir16, swir22, land)
    if t_low is None:
        return _per_scene(_residual_2d, *arrays, dtype="bool", screen=screen)
    given = xr.DataArray(np.asarray(t_low, dtype="float64"), dims=bt.dims[:-2])
    core = list(bt.dims[-2:])
    return xr.apply_ufunc(
        lambda *a: _residual_2d(*a[:-1], screen=screen, t_low=float(a[-1])),
        *arrays,
        given,
        input_core_dims=[core] * len(arrays) + [[]],
        output_core_dims=[core],
        vectorize=True,
        output_dtypes=["bool"],
    ).transpose(*bt.dims)


def clear_land_bt(
    bt: xr.DataArray,
    *,
    blue: xr.DataArray,
    red: xr.DataArray,
    land: xr.DataArray,
    screen: CloudScreen,
    green: xr.DataArray | None = None,
    nir08: xr.DataArray | None = None,
    swir16: xr.DataArray | None = None,
    swir22: xr.DataArray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(clear-land mask, BT as float64) exactly as `residual_cloud` takes T_low from them:
    a blockwise pass over a tile merges these into the scene's T_low (`scene_t_low`)."""
    arrays = [a.values for a in _screen_arrays(bt, blue, red, green, nir08, swir16, swir22, land)]
    return _screen_masks(*arrays, screen=screen)[2], arrays[0]


def scene_t_low(values: np.ndarray, counts: np.ndarray, *, screen: CloudScreen) -> float:
    """T_low of a scene from its clear-land BT values and their counts (merged over blocks):
    ``np.percentile`` of the expanded values, to the bit; NaN below ``min_clear_land``."""
    if int(np.sum(counts)) < screen.min_clear_land:
        return float("nan")
    return percentile_from_counts(values, counts, screen.percentile)


def percentile_from_counts(values: np.ndarray, counts: np.ndarray, q: float) -> float:
    """``np.percentile(np.repeat(values, counts), q)`` (linear method) without expanding:
    the same virtual index, neighbours and interpolation as NumPy's, so the same bits."""
    values = np.asarray(values, dtype="float64")
    counts = np.asarray(counts, dtype="int64")
    keep = counts > 0
    values, counts = values[keep], counts[keep]
    order = np.argsort(values, kind="stable")
    values, counts = values[order], counts[order]
    n = int(counts.sum())
    if n == 0:
        raise ValueError("percentile of no values")
    quantile = np.true_divide(q, 100)
    virtual = (n - 1) * quantile  # NumPy's "linear" (Hyndman & Fan type 7)
    ends = np.cumsum(counts)  # values[i] fills sorted positions ends[i-1] .. ends[i]-1

    def at(index: int) -> np.float64:
        return values[int(np.searchsorted(ends, index, side="right"))]

    if virtual >= n - 1:
        previous_index = -1
        a = b = values[-1]
    else:
        previous_index = int(np.floor(virtual))
        a, b = at(previous_index), at(previous_index + 1)
    gamma = np.float64(virtual - previous_index)
    diff = b - a
    if gamma >= 0.5:
        return float(b - diff * (1 - gamma))
    return float(a + diff * gamma)


def spectrally_cloudlike(
    bt, blue, red, green, nir08, swir16, swir22, *, screen: CloudScreen
) -> np.ndarray:
    """Fmask's potential-cloud-pixel tests (numpy); a test whose bands are NaN passes."""
    with np.errstate(invalid="ignore", divide="ignore"):
        hot = blue - 0.5 * red - 0.08
        ok = (hot > screen.hot_min) & (bt < 300.15)
        ndvi = (nir08 - red) / (nir08 + red)
        ndsi = (green - swir16) / (green + swir16)
        mean_vis = (blue + green + red) / 3.0
        whiteness = (
            np.abs(blue - mean_vis) + np.abs(green - mean_vis) + np.abs(red - mean_vis)
        ) / mean_vis
        ratio = nir08 / swir16
        for value, passes in (
            (swir22, swir22 > 0.03),
            (ndvi, ndvi < 0.8),
            (ndsi, ndsi < 0.8),
            (whiteness, whiteness < screen.whiteness_max),
            (ratio, ratio > screen.nir_swir_min),
        ):
            ok &= np.where(np.isfinite(value), passes, True)
    return ok


def _screen_arrays(bt, blue, red, green, nir08, swir16, swir22, land) -> list[xr.DataArray]:
    """The screen's inputs as its kernels take them: float64 bands (NaN where missing)."""
    bands = [
        (b if b is not None else xr.full_like(bt, np.nan)).astype("float64")
        for b in (blue, red, green, nir08, swir16, swir22)
    ]
    return [bt.astype("float64"), *bands, land.astype(bool)]


def _screen_masks(bt, blue, red, green, nir08, swir16, swir22, land, *, screen):
    """(usable, candidate, clear land); elementwise, so any shape gives the same pixels."""
    candidate = spectrally_cloudlike(bt, blue, red, green, nir08, swir16, swir22, screen=screen)
    usable = land & np.isfinite(bt) & np.isfinite(blue) & np.isfinite(red)
    return usable, candidate, usable & ~candidate


def _residual_2d(bt, blue, red, green, nir08, swir16, swir22, land, *, screen, t_low=None):
    usable, candidate, clear_land = _screen_masks(
        bt, blue, red, green, nir08, swir16, swir22, land, screen=screen
    )
    if t_low is None:
        if int(clear_land.sum()) < screen.min_clear_land:
            return np.zeros(bt.shape, bool)
        t_low = float(np.percentile(bt[clear_land], screen.percentile))
    elif np.isnan(t_low):
        return np.zeros(bt.shape, bool)  # too little clear land in the whole scene
    with np.errstate(invalid="ignore"):
        return usable & candidate & (bt < t_low - screen.margin_k)


def _distance_2d(cloudy, *, pixel_size_m):
    if not cloudy.any():
        return np.full(cloudy.shape, np.inf)
    return ndimage.distance_transform_edt(~cloudy) * pixel_size_m


def _per_scene(func, *arrays: xr.DataArray, dtype: str, **kwargs) -> xr.DataArray:
    """Apply a 2-D (y, x) numpy kernel to every scene; whole scenes, also when dask-backed."""
    core = list(arrays[0].dims[-2:])
    return xr.apply_ufunc(
        lambda *a: func(*a, **kwargs),
        *arrays,
        input_core_dims=[core] * len(arrays),
        output_core_dims=[core],
        vectorize=True,
        dask="parallelized",
        output_dtypes=[dtype],
        dask_gufunc_kwargs={"allow_rechunk": True},
    ).transpose(*arrays[0].dims)
