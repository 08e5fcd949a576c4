"""Rule baseline for tree canopy type from an annual cycle: phenology plus spectral traits.

Why a baseline: it needs no training, holds anywhere the physics holds, and is the yardstick
the temporal network must beat. It uses only phase-invariant metrics of the season-aligned
monthly composites (`canopy_composites`), so hemisphere and timing of the seasons do not
matter:

* tree vs no tree: a high green peak (NDVI), a wet, shadowed canopy at peak (high NDMI =
  (NIR - SWIR1) / (NIR + SWIR1), low SWIR2) and a long green season (crops and grass are
  brighter in SWIR and green for fewer months) -- after the Copernicus HRL Tree Cover
  Density / Dominant Leaf Type product logic (EEA, HRL Forest 2018 product user manual) and
  Gao (1996), Remote Sens. Environ. 58:257, for NDMI;
* conifer vs broadleaf: needle-leaf canopies are dark in NIR and SWIR1 (NIR ~0.15-0.25 vs
  broadleaf ~0.30-0.45; clumping and shadow, Rautiainen & Stenberg 2005; EarthPT / Dargana
  HLS studies), evergreen habit only adds a little weight. Evergreen is NOT conifer:
  tropical and eucalypt evergreen broadleaf canopies are bright in NIR and stay broadleaf.

Each rule is a soft threshold (a logistic of the distance to the threshold), so the
baseline also gives class probabilities, used for ROC-AUC and for the output confidence.
Known limit: deciduous needle-leaf (larch) is bright in summer NIR and comes out broadleaf,
where the HRL counts it as coniferous.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from geoproc.products.canopy.composites import CANOPY_BANDS, MonthlyComposites

NO_TREE, BROADLEAF, CONIFER = 0, 1, 2


@dataclass(frozen=True)
class RuleThresholds:
    """Soft thresholds of the rule baseline (reflectance units, HLS surface reflectance)."""

    peak_ndvi: float = 0.60
    """Minimum NDVI of the greenest month for a tree canopy."""
    peak_ndmi: float = 0.20
    """Minimum NDMI at the greenest month: tree canopies are wetter/darker in SWIR1."""
    peak_swir22: float = 0.11
    """Maximum SWIR2 reflectance at the greenest month: soil/grass are brighter."""
    green_months: float = 5.0
    """Minimum months with NDVI >= 0.5: crops have short seasons."""
    needle_brightness: float = 0.41
    """NIR + SWIR1 at peak below which a canopy is needle-leaf (dark): measured needle-leaf
    canopies ~0.25-0.38, temperate broadleaf ~0.50-0.65, tropical evergreen ~0.42-0.50."""
    evergreen_amplitude: float = 0.25
    """NDVI amplitude below which the canopy is evergreen (adds weight to conifer)."""


@dataclass(frozen=True)
class RuleResult:
    """Output of the rule baseline for a set of pixels."""

    canopy_class: np.ndarray
    """(pixels,) uint8: 0 no tree, 1 broadleaf, 2 conifer, 255 no data."""
    probabilities: np.ndarray
    """(3, pixels) float32 class probabilities (NaN where no data)."""
    cover: np.ndarray
    """(pixels,) float32 canopy cover percent 0..100 (NaN where no data)."""


def phenology_metrics(composites: MonthlyComposites) -> dict[str, np.ndarray]:
    """Phase-invariant metrics per pixel: peak, minimum and amplitude of NDVI, season
    length, and the reflectances at the greenest month."""
    values = composites.values
    bands = {name: values[:, i, :] for i, name in enumerate(CANOPY_BANDS)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ndvi = _normalised_difference(bands["nir08"], bands["red"])
        ndmi = _normalised_difference(bands["nir08"], bands["swir16"])
        valid = np.isfinite(ndvi).all(axis=0)
        peak = np.argmax(np.where(np.isfinite(ndvi), ndvi, -np.inf), axis=0)
        ndvi_max = np.nanmax(np.where(valid, ndvi, np.nan), axis=0)
        ndvi_min = np.nanmin(np.where(valid, ndvi, np.nan), axis=0)

    def at_peak(array: np.ndarray) -> np.ndarray:
        return np.take_along_axis(array, peak[None], axis=0)[0]

    metrics = {
        "ndvi_max": ndvi_max,
        "ndvi_min": ndvi_min,
        "ndvi_amplitude": ndvi_max - ndvi_min,
        "green_months": np.where(valid, (ndvi >= 0.5).sum(axis=0), np.nan),
        "ndmi_peak": at_peak(ndmi),
    }
    for name in CANOPY_BANDS:
        metrics[f"{name}_peak"] = at_peak(bands[name])
    return {k: np.where(valid, v, np.nan).astype("float32") for k, v in metrics.items()}


def classify_rules(
    composites: MonthlyComposites, *, thresholds: RuleThresholds | None = None
) -> RuleResult:
    """Tree type, class probabilities and canopy cover from the phenology rules."""
    t = thresholds or RuleThresholds()
    m = phenology_metrics(composites)
    valid = np.isfinite(m["ndvi_max"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        p_tree = (
            _soft_above(m["ndvi_max"], t.peak_ndvi, 0.05)
            * _soft_above(m["ndmi_peak"], t.peak_ndmi, 0.05)
            * _soft_below(m["swir22_peak"], t.peak_swir22, 0.01)
            * _soft_above(m["green_months"], t.green_months - 0.5, 0.5)
        )
        needle_logit = (t.needle_brightness - (m["nir08_peak"] + m["swir16_peak"])) / 0.03
        evergreen_logit = (t.evergreen_amplitude - m["ndvi_amplitude"]) / 0.1
        p_conifer_given_tree = _sigmoid(needle_logit + 0.3 * evergreen_logit)
    probabilities = np.stack(
        [1.0 - p_tree, p_tree * (1.0 - p_conifer_given_tree), p_tree * p_conifer_given_tree]
    ).astype("float32")
    probabilities[:, ~valid] = np.nan
    canopy_class = np.where(valid, np.argmax(np.nan_to_num(probabilities, nan=-1), axis=0), 255)
    closed = np.clip((m["ndmi_peak"] - 0.15) / 0.25, 0.0, 1.0)
    cover = np.where(canopy_class == NO_TREE, 0.0, 100.0 * closed)
    cover = np.where(valid, cover, np.nan).astype("float32")
    return RuleResult(
        canopy_class=canopy_class.astype("uint8"), probabilities=probabilities, cover=cover
    )


def _normalised_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a - b) / (a + b)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -50, 50)))


def _soft_above(x: np.ndarray, threshold: float, width: float) -> np.ndarray:
    return _sigmoid((x - threshold) / width)


def _soft_below(x: np.ndarray, threshold: float, width: float) -> np.ndarray:
    return _sigmoid((threshold - x) / width)
