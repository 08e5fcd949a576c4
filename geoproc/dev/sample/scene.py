"""The static world: land cover, terrain above the river, field parcels and tree canopy.

Everything is a function of position in one kilometre frame centred on 12 E 47.5 N, so the
two UTM zones and both archive sizes show one continuous landscape, evaluated at pixel
centres. The landscape is a pre-alpine foreland: a meandering river with a floodplain
(height above nearest drainage, HAND; Renno et al. 2008, drives the flood), lakes, towns,
mixed broadleaf and conifer forest, and a patchwork of arable parcels (winter cereal,
maize) and meadows. Classes follow CORINE-like groupings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geoproc.dev.sample.noise import hash_uniform, rng_for, smooth_field

# Land-cover codes written to truth/landcover (0 is nodata).
WATER, RIVER, BROADLEAF, CONIFER, GRASSLAND, CROPLAND, URBAN, BARE = 1, 2, 3, 4, 5, 6, 7, 8
LANDCOVER_CODES = {
    WATER: "water",
    RIVER: "river",
    BROADLEAF: "broadleaf_forest",
    CONIFER: "conifer_forest",
    GRASSLAND: "grassland",
    CROPLAND: "cropland",
    URBAN: "urban",
    BARE: "bare",
}
# Crop types on cropland parcels.
NO_CROP, WINTER_CEREAL, MAIZE = 0, 1, 2
# Canopy classes written to truth/canopy_class.
CANOPY_CODES = {0: "no_tree", 1: "broadleaf", 2: "conifer"}

_RIVER_HALF_WIDTH_KM = 0.04
_LAKES = ((1.5, 0.35, 0.30), (-8.0, -6.0, 0.8), (5.0, -10.0, 0.5), (-15.0, 2.0, 0.6))
_TOWNS = ((-0.6, 2.1, 0.45), (-6.0, -3.0, 0.8), (8.0, -5.0, 0.35), (14.0, 1.0, 0.5))
_FOREST_SEEDS = ((0.9, 2.4, 0.45),)


@dataclass
class World:
    """Static fields on one grid (all arrays share the grid's shape)."""

    landcover: np.ndarray
    """uint8 land-cover code."""
    crop: np.ndarray
    """uint8 crop type on cropland (NO_CROP elsewhere)."""
    parcel_u: np.ndarray
    """float64 per-parcel uniform number: shifts sowing, mowing and harvest dates."""
    hand_m: np.ndarray
    """Height above the river in metres: the flood spreads where it is below the stage."""
    canopy_cover: np.ndarray
    """Tree canopy cover in percent (0-100), zero outside forest."""
    texture: np.ndarray
    """Static multiplicative brightness texture (about 1 +- 0.05)."""
    elevation_m: np.ndarray
    """Terrain height above sea level (drives air temperature lapse and conifer preference)."""
    radar_texture: np.ndarray
    """Static unit-variance field of sub-class backscatter variation (structure, moisture)."""

    @property
    def canopy_class(self) -> np.ndarray:
        out = np.zeros(self.landcover.shape, np.uint8)
        out[self.landcover == BROADLEAF] = 1
        out[self.landcover == CONIFER] = 2
        return out

    @property
    def permanent_water(self) -> np.ndarray:
        return (self.landcover == WATER) | (self.landcover == RIVER)


def river_centre_km(x_km: np.ndarray, seed: int) -> np.ndarray:
    """Northing of the river centreline (a meander through the demo AOI)."""
    rng = rng_for(seed, 101)
    p1, p2, p3 = rng.uniform(0, 2 * np.pi, 3)
    return (
        1.3
        + 0.30 * np.sin(2 * np.pi * x_km / 4.2 + p1)
        + 0.12 * np.sin(2 * np.pi * x_km / 1.6 + p2)
        + 0.8 * np.sin(2 * np.pi * x_km / 30.0 + p3) * np.clip((np.abs(x_km) - 4.0) / 4.0, 0.0, 1.0)
    )


def _distance_to_river_km(x: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    yc = river_centre_km(x, seed)
    slope = (river_centre_km(x + 0.01, seed) - river_centre_km(x - 0.01, seed)) / 0.02
    return np.abs(y - yc) / np.sqrt(1 + slope**2)


def _blob(x, y, centres, noise, *, wobble: float) -> np.ndarray:
    mask = np.zeros(x.shape, bool)
    for cx, cy, r in centres:
        mask |= np.hypot(x - cx, y - cy) < r * (1 + wobble * noise)
    return mask


def build_world(x_km: np.ndarray, y_km: np.ndarray, *, seed: int) -> World:
    """Evaluate the landscape at pixel centres given in the kilometre frame."""
    x, y = x_km, y_km
    shore = smooth_field(x, y, rng_for(seed, 1), wavelength_km=(0.15, 1.0), waves=24)
    hills = smooth_field(x, y, rng_for(seed, 2), wavelength_km=(1.5, 12.0), waves=32)
    forest_noise = smooth_field(x, y, rng_for(seed, 3), wavelength_km=(0.6, 5.0), waves=32)
    conifer_noise = smooth_field(x, y, rng_for(seed, 4), wavelength_km=(0.8, 4.0), waves=24)
    cover_noise = smooth_field(x, y, rng_for(seed, 5), wavelength_km=(0.1, 1.0), waves=24)
    texture_noise = smooth_field(x, y, rng_for(seed, 6), wavelength_km=(0.06, 0.6), waves=32)
    plain_noise = smooth_field(x, y, rng_for(seed, 7), wavelength_km=(0.2, 1.5), waves=24)

    d_river = _distance_to_river_km(x, y, seed)
    # HAND: a floodplain rising ~6 m per km with metre-scale relief, steeper valley sides beyond 1 km.
    hand = 6.0 * d_river + 0.7 * plain_noise + 25.0 * np.clip(d_river - 1.0, 0, None)
    hand = np.clip(hand, 0.0, None)
    elevation = 460.0 + hand + 60.0 * hills

    lc = np.full(x.shape, GRASSLAND, np.uint8)
    crop = np.zeros(x.shape, np.uint8)

    # Arable parcels on a rotated grid: each parcel is one crop or a meadow.
    theta = np.deg2rad(20.0)
    u = x * np.cos(theta) + y * np.sin(theta)
    v = -x * np.sin(theta) + y * np.cos(theta)
    iu, iv = np.floor(u / 0.28).astype(np.int64), np.floor(v / 0.18).astype(np.int64)
    draw = hash_uniform(seed, iu, iv)
    parcel_u = hash_uniform(seed + 1, iu, iv)
    is_cereal = draw < 0.38
    is_maize = (draw >= 0.38) & (draw < 0.68)
    lc[is_cereal | is_maize] = CROPLAND
    crop[is_cereal] = WINTER_CEREAL
    crop[is_maize] = MAIZE
    lc[draw >= 0.975] = BARE
    # Wet floodplain stays meadow.
    lc[(d_river < 0.25) & (lc != BARE)] = GRASSLAND
    crop[d_river < 0.25] = NO_CROP

    forest = (forest_noise + 0.5 * hills > 0.55) | _blob(x, y, _FOREST_SEEDS, shore, wobble=0.3)
    forest &= d_river > 0.08
    conifer = conifer_noise + 0.6 * hills > 0.1
    lc[forest & conifer] = CONIFER
    lc[forest & ~conifer] = BROADLEAF
    crop[forest] = NO_CROP

    urban = _blob(x, y, _TOWNS, shore, wobble=0.35)
    lc[urban] = URBAN
    crop[urban] = NO_CROP

    lake = _blob(x, y, _LAKES, shore, wobble=0.25)
    lc[lake] = WATER
    river = d_river < _RIVER_HALF_WIDTH_KM
    lc[river] = RIVER
    crop[lake | river] = NO_CROP
    hand[lake | river] = 0.0

    is_forest = (lc == BROADLEAF) | (lc == CONIFER)
    cover = np.clip(80.0 + 9.0 * cover_noise + 4.0 * texture_noise, 45.0, 98.0)
    cover = np.where(is_forest, np.round(cover), 0.0)
    texture = 1.0 + 0.05 * texture_noise
    radar = smooth_field(x, y, rng_for(seed, 8), wavelength_km=(0.06, 0.5), waves=32)
    return World(lc, crop, parcel_u, hand, cover, texture, elevation, radar)
