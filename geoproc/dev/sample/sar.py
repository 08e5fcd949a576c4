"""Sentinel-1 C-band gamma0 (VV, VH) per land-cover class, season, flood and speckle.

Typical terrain-flattened gamma0 levels over European landscapes (e.g. Bauer-Marschallinger
et al. 2021, Remote Sens. 13:4536; Veloso et al. 2017, Remote Sens. Environ. 199:415 for
crops): calm open water -20 dB or lower in VV, forests -8..-6 dB, meadows and fields
-14..-8 dB rising with biomass and soil moisture, built-up areas brighter (double bounce);
VH 6-8 dB below VV on land and further below on water. Flooded forest and town brighten
(double bounce). Speckle is multiplicative with a unit-mean gamma distribution of shape
ENL (~4.4 for the multi-looked RTC product, Small 2011, IEEE TGRS 49:3081).
"""

from __future__ import annotations

import numpy as np

from geoproc.dev.sample.phenology import double_logistic
from geoproc.dev.sample.scene import (
    BARE,
    BROADLEAF,
    CONIFER,
    CROPLAND,
    GRASSLAND,
    RIVER,
    URBAN,
    WATER,
    World,
)

ENL = 4.4


def backscatter_db(
    world: World,
    doy: float,
    *,
    flood: np.ndarray,
    green: np.ndarray,
    wind_db: float,
    moisture_db: float,
    wet_snow: bool,
    static_db: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean (speckle-free) VV and VH gamma0 in dB."""
    lc = world.landcover
    leaf = double_logistic(doy, start=112, end=298)
    vv = np.full(lc.shape, -11.0)
    dvh = np.full(lc.shape, 7.0)
    vv[lc == WATER] = -23.0 + wind_db
    dvh[lc == WATER] = 9.0
    vv[lc == RIVER] = -19.5 + 0.5 * wind_db
    dvh[lc == RIVER] = 8.5
    vv[lc == BROADLEAF] = -8.0 + 1.0 * leaf
    dvh[lc == BROADLEAF] = 6.0
    vv[lc == CONIFER] = -7.0
    dvh[lc == CONIFER] = 6.0
    m = lc == GRASSLAND
    vv[m] = -12.0 + 2.0 * green[m] + moisture_db
    dvh[m] = 7.5
    m = lc == CROPLAND
    vv[m] = -13.5 + 5.0 * green[m] + moisture_db
    dvh[m] = 7.5 - 1.5 * green[m]
    vv[lc == URBAN] = -3.0
    dvh[lc == URBAN] = 7.0
    m = lc == BARE
    vv[m] = -14.0 + moisture_db
    dvh[m] = 8.0
    vv = vv + static_db

    if wet_snow:
        land = (lc != WATER) & (lc != RIVER)
        vv[land] -= 3.0
    if np.any(flood):
        forest_or_town = (lc == BROADLEAF) | (lc == CONIFER) | (lc == URBAN)
        open_flood = flood & ~forest_or_town
        vv[open_flood] = -21.0 + 0.3 * wind_db + 0.3 * static_db[open_flood]
        dvh[open_flood] = 8.5
        vv[flood & forest_or_town] += 3.0
    return vv, vv - dvh


def speckled_linear(mean_db: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Linear gamma0 with unit-mean gamma speckle (never exactly 0, which is nodata)."""
    speckle = rng.gamma(ENL, 1.0 / ENL, mean_db.shape)
    return np.maximum(10 ** (mean_db / 10.0) * speckle, 1e-6).astype(np.float32)
