"""Seasonal cycle of each land-cover class as endmember fractions for a day of year.

Broadleaf forest greens up in late April and drops its leaves in late October / November,
conifers stay evergreen, meadows are green from spring to autumn and are mown twice, winter
cereals are sown in October, grow in spring, ripen in June and are harvested in July, maize
is sown in May and harvested in late September. Curves are double logistics (Zhang et al.
2003, Remote Sens. Environ. 84:471) or piecewise-linear crop calendars (typical Bavarian
dates, DWD phenology network). Floods replace the surface by turbid water; snow covers open
land fully and forest partly (canopy interception).
"""

from __future__ import annotations

import numpy as np

from geoproc.dev.sample.scene import (
    BARE,
    BROADLEAF,
    CONIFER,
    CROPLAND,
    GRASSLAND,
    MAIZE,
    RIVER,
    URBAN,
    WATER,
    WINTER_CEREAL,
    World,
)
from geoproc.dev.sample.spectra import ENDMEMBER_NAMES


def double_logistic(doy: float, *, start: float, end: float, rate: float = 7.0) -> float:
    """0 in the dormant season, 1 between green-up `start` and senescence `end` (days of year)."""
    return float(
        1.0 / (1.0 + np.exp(-(doy - start) / rate)) - 1.0 / (1.0 + np.exp(-(doy - end) / rate))
    )


# Crop calendars: day of year -> (green fraction, dry fraction); the rest is bare soil.
_WINTER_CEREAL = np.array(
    [
        (0, 0.25, 0.0),
        (70, 0.28, 0.0),
        (135, 0.95, 0.0),
        (170, 0.88, 0.07),
        (195, 0.10, 0.85),
        (205, 0.05, 0.80),
        (207, 0.0, 0.45),
        (280, 0.0, 0.25),
        (285, 0.0, 0.0),
        (320, 0.15, 0.0),
        (367, 0.25, 0.0),
    ]
)
_MAIZE = np.array(
    [
        (0, 0.0, 0.25),
        (115, 0.0, 0.20),
        (125, 0.0, 0.0),
        (150, 0.0, 0.0),
        (170, 0.15, 0.0),
        (205, 0.95, 0.0),
        (240, 0.90, 0.05),
        (262, 0.35, 0.55),
        (272, 0.05, 0.35),
        (274, 0.0, 0.30),
        (367, 0.0, 0.25),
    ]
)


def snow_fraction_by_class(landcover: np.ndarray, depth_factor: float) -> np.ndarray:
    """Fraction of the pixel seen as snow: canopies hide part of the snow pack."""
    visible = np.select(
        [
            landcover == CONIFER,
            landcover == BROADLEAF,
            landcover == URBAN,
            (landcover == WATER) | (landcover == RIVER),
        ],
        [0.35, 0.75, 0.6, 0.0],
        1.0,
    )
    return visible * depth_factor


def endmember_fractions(
    world: World,
    doy: float,
    *,
    flood: np.ndarray,
    snow_depth_factor: float = 0.0,
) -> dict[str, np.ndarray]:
    """Fractions of every endmember in every pixel on a given day (they sum to 1)."""
    shape = world.landcover.shape
    f = {name: np.zeros(shape) for name in ENDMEMBER_NAMES}
    lc = world.landcover
    u = world.parcel_u
    cover = world.canopy_cover / 100.0

    herb = 0.35 + 0.55 * double_logistic(doy, start=85, end=305, rate=10)
    leaf = double_logistic(doy, start=112, end=298, rate=7)
    understory_green = 0.7 * double_logistic(doy, start=95, end=300, rate=10)

    m = lc == BROADLEAF
    g = cover[m] * leaf
    f["green_broadleaf"][m] = g
    f["green_herb"][m] = (1 - g) * understory_green
    f["litter"][m] = (1 - g) * (1 - understory_green)

    m = lc == CONIFER
    g = cover[m] * (0.92 + 0.08 * leaf)
    f["green_conifer"][m] = g
    f["green_herb"][m] = (1 - g) * understory_green
    f["litter"][m] = (1 - g) * (1 - understory_green)

    m = lc == GRASSLAND
    since_cut = np.minimum(_days_since(doy, 150 + 20 * u[m]), _days_since(doy, 215 + 20 * u[m]))
    cut_loss = np.where(since_cut < 25, 0.45 * (1 - since_cut / 25), 0.0)
    green = np.clip(herb - cut_loss, 0.15, 0.95)
    f["green_herb"][m] = green
    f["dry_vegetation"][m] = (1 - green) * 0.7
    f["soil"][m] = (1 - green) * 0.3

    for crop, table in ((WINTER_CEREAL, _WINTER_CEREAL), (MAIZE, _MAIZE)):
        m = (lc == CROPLAND) & (world.crop == crop)
        t = doy - 12.0 * (u[m] - 0.5)
        green = np.interp(t, table[:, 0], table[:, 1])
        dry = np.interp(t, table[:, 0], table[:, 2])
        f["green_herb"][m] = green
        f["dry_vegetation"][m] = dry
        f["soil"][m] = 1 - green - dry

    m = lc == URBAN
    f["urban"][m] = 0.85
    f["green_herb"][m] = 0.15 * herb
    f["dry_vegetation"][m] = 0.15 * (1 - herb)

    f["soil"][lc == BARE] = 1.0
    f["water_clear"][lc == WATER] = 1.0
    f["water_clear"][lc == RIVER] = 0.55
    f["water_turbid"][lc == RIVER] = 0.45

    if np.any(flood):
        for name in ENDMEMBER_NAMES:
            f[name][flood] = 0.0
        f["water_turbid"][flood] = 1.0

    if snow_depth_factor > 0:
        s = snow_fraction_by_class(lc, snow_depth_factor)
        s[flood] = 0.0
        for name in ENDMEMBER_NAMES:
            f[name] *= 1 - s
        f["snow"] += s
    return f


def _days_since(doy: float, event_doy: np.ndarray) -> np.ndarray:
    d = doy - event_doy
    return np.where(d < 0, 999.0, d)
