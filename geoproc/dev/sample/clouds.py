"""Clouds, their shadows and the HLS Fmask layer that (imperfectly) flags them.

Cloud fields are thresholded smooth random fields (cumulus-like structure at 0.4-6 km),
their opacity rises from thin edges to opaque cores; the shadow is the same field moved
along the solar azimuth by cloud height x tan(solar zenith) (the geometry Fmask itself
uses, Zhu & Woodcock 2012, Remote Sens. Environ. 118:83). The Fmask layer follows the HLS
v2.0 bit layout (user guide table 9): bit 1 cloud, 2 adjacent to cloud (a dilation ring),
3 cloud shadow, 4 snow/ice, 5 water, 6-7 aerosol level (00 climatology, 01 low, 10
moderate, 11 high). Like the real Fmask it misses a few percent of cloud pixels: thin edges
and some small clouds (Foga et al. 2017, Remote Sens. Environ. 194:379, report ~2-5 %).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.special import ndtri

from geoproc.catalog.sensors import FMASK_AEROSOL_SHIFT, FMASK_BITS
from geoproc.dev.sample.noise import smooth_field

CLEAR, CLOUD, SHADOW = 0, 1, 2
CLOUD_TRUTH_CODES = {CLEAR: "clear", CLOUD: "cloud", SHADOW: "cloud_shadow"}
TRUTH_NODATA = 255
_ADJACENT_PX = 3
_SMALL_CLOUD_PX = 40


@dataclass(frozen=True)
class CloudScene:
    """Per-acquisition cloud parameters shared by every granule of the overpass."""

    cover: float
    """Target cloud fraction (0-1)."""
    height_km: float
    shift_km: tuple[float, float]
    """(east, north) offset from a shadow to the cloud that casts it (towards the sun)."""
    miss_rate: float
    """Fraction of cloud pixels Fmask fails to flag."""
    aot: float
    """Scene aerosol optical thickness at 550 nm."""


def draw_cloud_scene(
    day: dt.date, zenith_deg: float, azimuth_deg: float, rng: np.random.Generator
) -> CloudScene:
    """Cloud cover climatology of central Europe: many clear and many overcast days."""
    winter = 0.5 * (1 + math.cos(2 * math.pi * (day.timetuple().tm_yday - 15) / 366))
    r = rng.random()
    p_clear, p_overcast = 0.36 - 0.12 * winter, 0.12 + 0.18 * winter
    if r < p_clear:
        cover = rng.uniform(0.0, 0.03)
    elif r < p_clear + p_overcast:
        cover = rng.uniform(0.9, 1.0)
    else:
        cover = rng.uniform(0.05, 0.85)
    height = rng.uniform(0.8, 3.5)
    length = height * math.tan(math.radians(min(zenith_deg, 80.0)))
    az = math.radians(azimuth_deg)
    aot = float(np.clip(np.exp(rng.normal(math.log(0.08 + 0.08 * (1 - winter)), 0.45)), 0.01, 1.0))
    return CloudScene(
        float(cover),
        height,
        (length * math.sin(az), length * math.cos(az)),
        rng.uniform(0.02, 0.04),
        aot,
    )


def _opacity(
    x_km: np.ndarray, y_km: np.ndarray, scene: CloudScene, key_rng_state: dict
) -> np.ndarray:
    if scene.cover <= 0.0:
        return np.zeros(np.shape(x_km))
    rng = np.random.default_rng()
    rng.bit_generator.state = key_rng_state
    n = smooth_field(
        x_km, y_km, rng, wavelength_km=(0.4, 6.0), waves=40, spectral_slope=1.2, step=4
    )
    thr = float(ndtri(1.0 - min(scene.cover, 0.999)))
    alpha = np.clip((n - thr) / 0.6, 0.0, 1.0) ** 0.8
    alpha[alpha < 0.02] = 0.0
    return alpha


@dataclass
class CloudLayers:
    """Everything cloud-related on one grid."""

    opacity: np.ndarray
    """0 clear .. 1 opaque cloud."""
    shadow: np.ndarray
    """0 lit .. 1 full shadow (only where no cloud is seen)."""
    truth: np.ndarray
    """uint8 0 clear, 1 cloud, 2 shadow."""
    flagged_cloud: np.ndarray
    flagged_shadow: np.ndarray


def cloud_layers(
    x_km: np.ndarray,
    y_km: np.ndarray,
    scene: CloudScene,
    field_rng: np.random.Generator,
    miss_rng: np.random.Generator,
    *,
    pixel_m: float = 30.0,
) -> CloudLayers:
    """Cloud opacity, shadow, truth classes and what Fmask flags of them."""
    state = field_rng.bit_generator.state
    alpha = _opacity(x_km, y_km, scene, state)
    dx, dy = scene.shift_km
    cast = _opacity(x_km + dx, y_km + dy, scene, state)
    cloud = alpha > 0
    shadow = np.where(cloud, 0.0, cast)
    truth = np.zeros(alpha.shape, np.uint8)
    truth[cloud] = CLOUD
    truth[(shadow > 0)] = SHADOW

    missed = _fmask_misses(alpha, scene.miss_rate, miss_rng)
    flagged_cloud = cloud & ~missed
    shift_cols = int(round(dx * 1000 / pixel_m))
    shift_rows = int(round(-dy * 1000 / pixel_m))
    from_missed = _shifted(missed, rows=shift_rows, cols=shift_cols)
    flagged_shadow = (truth == SHADOW) & ~from_missed
    return CloudLayers(alpha, shadow, truth, flagged_cloud, flagged_shadow)


def _fmask_misses(alpha: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
    """Pixels of real cloud left unflagged: half the small clouds, then the thinnest edges."""
    cloud = alpha > 0
    total = int(cloud.sum())
    missed = np.zeros(alpha.shape, bool)
    if total == 0:
        return missed
    labels, n = ndimage.label(cloud, structure=np.ones((3, 3)))
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    drop = (sizes < _SMALL_CLOUD_PX) & (rng.random(n + 1) < 0.5)
    drop[0] = False
    missed = drop[labels]
    budget = int(rate * total) - int(missed.sum())
    remaining = cloud & ~missed
    if budget > 0 and remaining.any():
        values = np.sort(alpha[remaining])
        cut = values[min(budget, values.size - 1)]
        missed |= remaining & (alpha < cut)
    return missed


def _shifted(mask: np.ndarray, *, rows: int, cols: int) -> np.ndarray:
    """mask moved so that out[r, c] = mask[r + rows, c + cols] (False outside)."""
    out = np.zeros_like(mask)
    h, w = mask.shape
    r0, r1 = max(0, -rows), min(h, h - rows)
    c0, c1 = max(0, -cols), min(w, w - cols)
    if r0 < r1 and c0 < c1:
        out[r0:r1, c0:c1] = mask[r0 + rows : r1 + rows, c0 + cols : c1 + cols]
    return out


def aerosol_level(aot: np.ndarray) -> np.ndarray:
    """HLS two-bit aerosol level from AOT at 550 nm: 1 low (< 0.15), 2 moderate (< 0.35), 3 high."""
    return np.where(aot < 0.15, 1, np.where(aot < 0.35, 2, 3)).astype(np.uint8)


def fmask(
    layers: CloudLayers,
    *,
    water: np.ndarray,
    snow: np.ndarray,
    aot: np.ndarray,
) -> np.ndarray:
    """Encode the HLS Fmask byte (fill is applied by the caller)."""
    cloud = layers.flagged_cloud
    adjacent = (
        ndimage.binary_dilation(cloud, structure=np.ones((3, 3)), iterations=_ADJACENT_PX) & ~cloud
    )
    out = np.zeros(cloud.shape, np.uint8)
    out |= cloud.astype(np.uint8) << FMASK_BITS["cloud"]
    out |= adjacent.astype(np.uint8) << FMASK_BITS["adjacent_cloud"]
    out |= (layers.flagged_shadow & ~cloud).astype(np.uint8) << FMASK_BITS["cloud_shadow"]
    out |= (snow & ~cloud).astype(np.uint8) << FMASK_BITS["snow_ice"]
    out |= (water & ~cloud).astype(np.uint8) << FMASK_BITS["water"]
    level = np.where(water, 0, aerosol_level(aot)).astype(np.uint8)
    out |= level << FMASK_AEROSOL_SHIFT
    return out
