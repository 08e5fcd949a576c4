"""Flooded forest and built-up land in Sentinel-1: backscatter that rises against its own history.

Method: water under a canopy or between buildings is not dark in C-band; the trunk or wall
and the smooth water below form a dihedral corner, and co-polarised backscatter *rises* by
a few dB (Pulvirenti et al. 2011, Remote Sens. Environ. 115:990 and 2016, IEEE JSTARS 9:
1532 for flooded vegetation; Chini et al. 2019, Remote Sens. 11:107 for urban floods). Each
pixel is compared with its own reference backscatter, the temporal median of the cube's
Sentinel-1 dates (a change-detection reference in the sense of Schlaffer et al. 2015, Int.
J. Appl. Earth Obs. 38:15 and Chini et al. 2017). Three guards keep the test from firing
on any seasonal brightening:

1. *Land-cover evidence from the cube*: only persistently bright scatterers can show double
   bounce. Forest canopies (volume) and built-up land (dihedrals) sit at about -9 dB or
   brighter in C-band VV all year, open low vegetation and soil at -10 to -16 dB
   (Bauer-Marschallinger et al. 2021, Remote Sens. 13:4536; the same separation GFM uses
   for its exclusion of built-up areas). The gate is the pixel's reference backscatter,
   which also works without any optical view (cloud-persistent regions); NDVI would not
   separate forest from meadows and says nothing about towns.
2. *A spatially coherent increase*: the increase is averaged over a small window of gated
   pixels (a flooded stand is many pixels wide), so single speckle spikes do not fire.
3. *Hydrological context*: a flooded stand or street is connected to the open flood water
   seen on the same date (the contextual rule of Pulvirenti et al. 2011 and of the urban
   region growing of Chini et al. 2019); increases far from any new open water are kept
   as land.

The result is indirect evidence and is reported with moderate confidence
(`DOUBLE_BOUNCE_PROBABILITY`) and its own diagnostic bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

DOUBLE_BOUNCE_PROBABILITY = 0.75


@dataclass(frozen=True)
class DoubleBounceOptions:
    """Rules of the double-bounce test (all backscatter in dB, co-polarised VV)."""

    bright_reference_db: float = -10.0
    """Reference (temporal median) backscatter at or above this is forest or built-up."""
    min_increase_db: float = 2.0
    """Window-mean rise over the reference that counts as double bounce (flooded stands
    rise 2-5 dB, Pulvirenti et al. 2011)."""
    window: int = 3
    """Edge of the window over which the rise of gated pixels is averaged."""
    min_seed_pixels: int = 5
    """Open new (flood) water pixels a connected region must hold to be called flooded."""
    max_gap_px: int = 2
    """Pixels that may separate a flooded stand from the open water: the boundary pixel mixes
    dark water and bright double bounce and is neither, and the speckle filter widens it."""
    open_flood_drop_db: float = 3.0
    """Open water counts as new (flood) water where it is this much darker than its
    reference: the change-detection criterion of Chini et al. 2017 / Schlaffer et al. 2015."""
    min_reference_dates: int = 4
    """Fewer SAR dates than this give no trustworthy reference: the test does not run."""


def mean_increase(
    db: np.ndarray, reference: np.ndarray, gate: np.ndarray, *, window: int = 3
) -> np.ndarray:
    """Mean of (db - reference) over the gated, valid pixels of each ``window`` x ``window``.

    NaN outside the gate or where the pixel itself is not valid.
    """
    inc = np.asarray(db, np.float64) - np.asarray(reference, np.float64)
    ok = np.isfinite(inc) & gate
    if window <= 1:
        return np.where(ok, inc, np.nan).astype(np.float32)
    total = ndimage.uniform_filter(np.where(ok, inc, 0.0), size=window, mode="constant")
    count = ndimage.uniform_filter(ok.astype(np.float64), size=window, mode="constant")
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = total / count
    return np.where(ok, mean, np.nan).astype(np.float32)


def connected_to_seeds(
    candidates: np.ndarray, seeds: np.ndarray, *, min_seed_pixels: int = 1, max_gap: int = 0
) -> np.ndarray:
    """Candidates in an 8-connected region of (candidates | seeds) holding enough seeds.

    ``max_gap``: seeds reach this many pixels across a seam that is neither (dilation).
    """
    seeds = np.asarray(seeds, bool)
    reach = (
        ndimage.binary_dilation(seeds, structure=np.ones((3, 3), bool), iterations=max_gap)
        if max_gap > 0
        else seeds
    )
    region = np.asarray(candidates, bool) | reach
    labels, n = ndimage.label(region, structure=np.ones((3, 3), bool))
    if n == 0:
        return np.zeros(region.shape, bool)
    seed_count = np.bincount(labels[seeds & region], minlength=n + 1)
    keep = seed_count >= max(min_seed_pixels, 1)
    keep[0] = False
    return keep[labels] & np.asarray(candidates, bool)


def flooded_bright_scatterers(
    db: np.ndarray,
    reference: np.ndarray,
    open_water: np.ndarray,
    *,
    options: DoubleBounceOptions = DoubleBounceOptions(),
) -> np.ndarray:
    """True where a forest / built-up pixel brightened and touches today's open flood water.

    ``open_water``: pixels classified as open water on the same date; those darker than
    their reference by ``open_flood_drop_db`` are the new (flood) water that seeds.
    """
    with np.errstate(invalid="ignore"):
        open_flood = np.asarray(open_water, bool) & (
            np.asarray(db) - np.asarray(reference) <= -options.open_flood_drop_db
        )
    gate = np.isfinite(reference) & (reference >= options.bright_reference_db)
    rise = mean_increase(db, reference, gate, window=options.window)
    candidates = np.isfinite(rise) & (rise >= options.min_increase_db)
    return connected_to_seeds(
        candidates,
        open_flood,
        min_seed_pixels=options.min_seed_pixels,
        max_gap=options.max_gap_px,
    )
