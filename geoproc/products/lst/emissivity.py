"""Surface emissivity for the thermal bands: NDVI thresholds, with water and snow/ice on their own.

Method: the NDVI Thresholds Method (NDVI-THM) of Sobrino et al. (2004, Remote Sens. Environ.
90:434-440; 2008, IEEE TGRS 46:316-327) with NDVI_s = 0.2 and NDVI_v = 0.5:

* bare soil (NDVI < NDVI_s): ``eps_s = a - b * rho_red``; Landsat 8 TIRS coefficients from
  Skokovic et al. (2014, ESA SP-726) as used by Sobrino et al. (2016): B10 ``0.973 - 0.047
  rho_red``, B11 ``0.984 - 0.026 rho_red``;
* full vegetation (NDVI > NDVI_v): ``eps_v`` (B10 0.987, B11 0.989, same sources);
* mixed: ``eps = eps_v Pv + eps_s (1 - Pv) + C`` with ``Pv = ((NDVI - NDVI_s)/(NDVI_v -
  NDVI_s))^2`` and the cavity term in the form of Valor & Caselles (1996, Remote Sens.
  Environ. 57:167-184), ``C = 4 d_eps Pv (1 - Pv)``, with the mean cavity effect
  ``d_eps = 0.005`` that Sobrino et al. (2008) give for mixed surfaces. C vanishes for bare
  soil and closed canopy, and ``eps_s`` in the mixed branch is the pixel's own soil value,
  so the model is continuous at both breakpoints (a jump would be a false ~1 K LST edge).

NDVI-THM alone gives water, snow and ice the emissivity of bright bare soil (~0.93; about
1 K too cold over ice). Those surfaces therefore get library values (ASTER spectral library,
Baldridge et al. 2009; Hori et al. 2006 for snow): water 0.991 / 0.986, snow and ice
0.990 / 0.985 (B10 / B11). They are recognised from the HLS Fmask bits (4 snow/ice,
5 water) when present, else from NDSI > 0.4 with nir08 > 0.11 (Hall et al. 1995) for snow
and ice and from NDWI > 0 (McFeeters 1996) or NDVI < 0 for water.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from geoproc.catalog.sensors import FMASK_BITS, FMASK_NODATA
from geoproc.errors import UnknownNameError

SURFACE_CLASSES = {0: "soil", 1: "mixed", 2: "vegetation", 3: "water", 4: "snow_ice", 5: "provided"}
"""Class codes written into the QA: which emissivity rule a pixel used."""
SOIL, MIXED, VEGETATION, WATER, SNOW_ICE, PROVIDED = range(6)


@dataclass(frozen=True)
class BandEmissivity:
    """Emissivity constants of one thermal band."""

    soil_intercept: float
    """`a` in the bare-soil relation ``eps_s = a - b * rho_red``."""
    soil_red_slope: float
    """`b` in the bare-soil relation."""
    vegetation: float
    """Emissivity of a closed canopy."""
    water: float
    """Emissivity of open water."""
    snow_ice: float
    """Emissivity of snow and ice."""


BAND_EMISSIVITY = {
    "lwir11": BandEmissivity(0.973, 0.047, vegetation=0.987, water=0.991, snow_ice=0.990),
    "lwir12": BandEmissivity(0.984, 0.026, vegetation=0.989, water=0.986, snow_ice=0.985),
}

CLASS_UNCERTAINTY = {SOIL: 0.012, MIXED: 0.014, VEGETATION: 0.012, WATER: 0.010, SNOW_ICE: 0.005}
"""One-sigma emissivity uncertainty per class: the RMS difference between NDVI-THM and the
ASTER GED-based USGS ST_EMIS (Cook et al. 2014) on the clear pixels of four real Landsat C2 L2
scenes (TM, ETM+, two TIRS; `geoproc.products.lst.real_cases.calibrate`). Snow/ice keeps the
library spread 0.005 (Hori et al. 2006): one ice scene agreed within 0.0004, too few to fit."""


@dataclass(frozen=True)
class NdviThresholds:
    """Parameters of NDVI-THM and of the water/snow tests."""

    ndvi_soil: float = 0.2
    """NDVI below which a pixel is bare soil (Sobrino et al. 2008)."""
    ndvi_vegetation: float = 0.5
    """NDVI above which a pixel is full vegetation."""
    cavity: float = 0.005
    """Mean cavity effect d_eps of mixed pixels (Sobrino et al. 2008); C = 4 d_eps Pv (1 - Pv)."""
    ndsi_snow: float = 0.4
    """NDSI above which a pixel is snow/ice (with nir08 above `nir_snow`)."""
    nir_snow: float = 0.11
    """Minimum nir08 reflectance for snow; excludes water, which also has a high NDSI."""
    ndwi_water: float = 0.0
    """NDWI (green, nir08) above which a non-snow pixel is water."""


def ndvi_thm_emissivity(
    ndvi, red, *, band: str = "lwir11", thresholds: NdviThresholds = NdviThresholds()
):
    """NDVI-THM emissivity and class code (soil/mixed/vegetation) from NDVI and red reflectance."""
    c = _band_constants(band)
    t = thresholds
    soil = c.soil_intercept - c.soil_red_slope * red
    pv = ((ndvi - t.ndvi_soil) / (t.ndvi_vegetation - t.ndvi_soil)).clip(0.0, 1.0) ** 2
    cavity = 4.0 * t.cavity * pv * (1.0 - pv)
    mixed = c.vegetation * pv + soil * (1.0 - pv) + cavity
    eps = xr.where(
        ndvi < t.ndvi_soil, soil, xr.where(ndvi > t.ndvi_vegetation, c.vegetation, mixed)
    )
    cls = xr.where(ndvi < t.ndvi_soil, SOIL, xr.where(ndvi > t.ndvi_vegetation, VEGETATION, MIXED))
    valid = np.isfinite(ndvi) & np.isfinite(red)
    return eps.where(valid), cls.where(valid)


def surface_classes(
    *,
    red,
    nir08,
    green=None,
    swir16=None,
    fmask=None,
    thresholds: NdviThresholds = NdviThresholds(),
):
    """Per-pixel class code (0..4, NaN where unknown): NDVI-THM classes, then water and snow/ice."""
    ndvi = _normalized_difference(nir08, red)
    _, cls = ndvi_thm_emissivity(ndvi, red, thresholds=thresholds)
    water = ndvi < 0
    snow = xr.zeros_like(ndvi, dtype=bool)
    if green is not None:
        water = water | (_normalized_difference(green, nir08) > thresholds.ndwi_water)
        if swir16 is not None:
            snow = (_normalized_difference(green, swir16) > thresholds.ndsi_snow) & (
                nir08 > thresholds.nir_snow
            )
    if fmask is not None:
        bits = fmask.fillna(FMASK_NODATA).astype("uint16")
        known = bits != FMASK_NODATA
        snow = xr.where(known, (bits & (1 << FMASK_BITS["snow_ice"])) > 0, False) | snow
        water = xr.where(known, (bits & (1 << FMASK_BITS["water"])) > 0, False) | water
    cls = xr.where(water, WATER, cls)
    cls = xr.where(snow, SNOW_ICE, cls)
    return cls.where(np.isfinite(ndvi))


def emissivity_for_classes(
    classes,
    red,
    nir08,
    *,
    band: str,
    thresholds: NdviThresholds = NdviThresholds(),
    class_sigma: dict[int, float] | None = None,
):
    """Emissivity of `band` and its one-sigma uncertainty from class codes and reflectances.

    `class_sigma` (class code -> sigma) replaces `CLASS_UNCERTAINTY` where it names a class,
    e.g. sigmas fitted without the scene being scored (`real_cases.calibrate`).
    """
    c = _band_constants(band)
    ndvi = _normalized_difference(nir08, red)
    eps, _ = ndvi_thm_emissivity(ndvi, red, band=band, thresholds=thresholds)
    eps = xr.where(classes == WATER, c.water, eps)
    eps = xr.where(classes == SNOW_ICE, c.snow_ice, eps)
    sigma = xr.zeros_like(eps)
    for code, s in {**CLASS_UNCERTAINTY, **(class_sigma or {})}.items():
        sigma = xr.where(classes == code, s, sigma)
    known = np.isfinite(classes)
    return eps.where(known), sigma.where(known)


def _normalized_difference(a, b):
    with np.errstate(divide="ignore", invalid="ignore"):
        nd = (a - b) / (a + b)
    return nd.where(np.isfinite(nd))


def _band_constants(band: str) -> BandEmissivity:
    if band not in BAND_EMISSIVITY:
        raise UnknownNameError(
            f"No emissivity constants for thermal band {band!r}; use one of "
            f"{', '.join(BAND_EMISSIVITY)}."
        )
    return BAND_EMISSIVITY[band]
