"""Spatially smooth random fields defined as functions of position, not of a pixel grid.

A sum of plane waves with random directions, log-uniform wavelengths and phases (the
spectral representation of a stationary Gaussian field; Shinozuka & Deodatis 1991) can be
evaluated at any coordinate, so two UTM zones, two overlapping granules or two sizes of the
archive see exactly the same world where they overlap. With enough waves the field is close
to N(0, 1), so a cover fraction maps to a threshold through the normal quantile.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def rng_for(seed: int, *keys: int) -> np.random.Generator:
    """A generator that depends only on the seed and the keys (never on processing order)."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, *[int(k) & 0xFFFFFFFF for k in keys]])


def smooth_field(
    x_km: np.ndarray,
    y_km: np.ndarray,
    rng: np.random.Generator,
    *,
    wavelength_km: tuple[float, float],
    waves: int = 32,
    spectral_slope: float = 1.0,
    step: int = 1,
) -> np.ndarray:
    """Unit-variance, zero-mean smooth field at (x_km, y_km); larger waves weigh more.

    With `step` > 1 on a 2-D grid the waves are summed every `step` pixels and filled in
    bilinearly: exact enough when the shortest wavelength spans many steps, and 10x faster.
    """
    if step > 1 and np.ndim(x_km) == 2 and min(np.shape(x_km)) > step:
        h, w = np.shape(x_km)
        ri = np.unique(np.r_[np.arange(0, h, step), h - 1])
        ci = np.unique(np.r_[np.arange(0, w, step), w - 1])
        coarse = smooth_field(
            x_km[np.ix_(ri, ci)],
            y_km[np.ix_(ri, ci)],
            rng,
            wavelength_km=wavelength_km,
            waves=waves,
            spectral_slope=spectral_slope,
        )
        rr = np.interp(np.arange(h), ri, np.arange(ri.size))
        cc = np.interp(np.arange(w), ci, np.arange(ci.size))
        grid_r, grid_c = np.meshgrid(rr, cc, indexing="ij")
        return ndimage.map_coordinates(coarse, [grid_r, grid_c], order=1, mode="nearest")
    lam = np.exp(rng.uniform(np.log(wavelength_km[0]), np.log(wavelength_km[1]), waves))
    theta = rng.uniform(0.0, 2 * np.pi, waves)
    phase = rng.uniform(0.0, 2 * np.pi, waves)
    amp = lam**spectral_slope
    amp = amp / np.sqrt(np.sum(amp**2) / 2.0)
    k = 2 * np.pi / lam
    out = np.zeros(np.shape(x_km), dtype=np.float64)
    for i in range(waves):
        out += amp[i] * np.cos(
            k[i] * (np.cos(theta[i]) * x_km + np.sin(theta[i]) * y_km) + phase[i]
        )
    return out


def hash_uniform(seed: int, *ints: np.ndarray) -> np.ndarray:
    """Uniform [0, 1) numbers from integer keys (splitmix64), same on every machine."""
    with np.errstate(over="ignore"):
        h = np.full(
            np.broadcast(*ints).shape, np.uint64(seed * 0x9E3779B97F4A7C15 % 2**64), dtype=np.uint64
        )
        for v in ints:
            h = h ^ (
                np.asarray(v).astype(np.int64).astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
            )
            h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            h = h ^ (h >> np.uint64(31))
    return (h >> np.uint64(11)).astype(np.float64) / float(2**53)
