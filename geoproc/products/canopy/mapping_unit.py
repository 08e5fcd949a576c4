"""The FAO forest minimum area as a mapping unit on the per-pixel tree probability.

Why: forest references (national land-use maps, LPIS, Corine, the Copernicus HRL Forest
Type) map *areas*, not pixels. The FAO definition of forest is "land spanning more than 0.5
hectares with trees higher than 5 metres and a canopy cover of more than 10 percent",
including "forest roads, firebreaks and other small open areas" (FAO 2018, Global Forest
Resources Assessment 2020: Terms and Definitions, FRA 2020 Working Paper 188, Rome, p. 4),
and the Copernicus HRL Forest Type product applies exactly that 0.5 ha minimum mapping
unit to its per-pixel tree cover (Copernicus Land Monitoring Service, HRL Forest 2018
Product User Manual, section 2). A per-pixel classifier misses leafless or gappy stands
inside a forest and catches single trees and hedges in grassland: on the real Slovenian
series (see `real_cases`) half the errors of the per-pixel map sit within 2 px of a
reference edge or in speckle inside large forest polygons.

Method: the tree probability of each pixel is replaced by the mean tree probability of
the clear pixels in a disk of the mapping-unit area around it (0.5 ha: radius 39.9 m,
4 px at 10 m, 1 px at 30 m), i.e. a soft majority filter at the FAO area; leaf type stays
per pixel. Masked pixels are left out of every mean and stay no data. The filter is local
with a radius of at most `MAX_RADIUS_PX`, the product's declared halo, so spatial blocks
with that halo give the whole-tile result. It applies only where the input is an image
whose pixel size is known: a projected or geographic CRS, regular x/y spacing and at least
two pixels along both axes. Isolated pixel series stacked along one axis (e.g. labelled
point samples) have no spatial neighbourhood and are classified per pixel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import dask.array as da
import numpy as np
import xarray as xr
from scipy import ndimage

FAO_FOREST_MIN_AREA_HA = 0.5
"""FAO FRA 2020 minimum forest area (hectares)."""
MAX_RADIUS_PX = 16
"""Largest disk radius in pixels (the product's halo): covers 0.5 ha down to 2.5 m pixels."""


@dataclass(frozen=True)
class MappingUnit:
    """The disk the tree probability is averaged over (radius 0: per-pixel, no filter)."""

    radius_px: int
    footprint: np.ndarray
    description: str


def per_pixel(reason: str) -> MappingUnit:
    return MappingUnit(0, np.ones((1, 1), dtype=bool), f"none: {reason}")


def mapping_unit_for(series: xr.Dataset, area_ha: float) -> MappingUnit:
    """The mapping-unit disk for a (time, y, x) dataset, or per-pixel with the reason."""
    if area_ha <= 0:
        return per_pixel("mapping_unit_ha=0 (per-pixel classes)")
    ny, nx = series.sizes["y"], series.sizes["x"]
    if ny < 2 or nx < 2:
        return per_pixel(
            f"the grid is {ny} x {nx} px, not an image (isolated pixel series are "
            "classified per pixel)"
        )
    size = pixel_size_m(series)
    if size is None:
        return per_pixel("pixel size unknown (no CRS or irregular x/y spacing)")
    dy, dx = size
    footprint = _disk_of_area(area_ha * 1e4, dy, dx)
    if footprint.sum() <= 1:
        return per_pixel(f"pixels of {dx:g} x {dy:g} m are coarser than {area_ha:g} ha")
    capped = max(footprint.shape) // 2 >= MAX_RADIUS_PX and footprint.sum() * dx * dy < (
        area_ha * 1e4 * 0.9
    )
    area = footprint.sum() * dx * dy / 1e4
    text = (
        f"tree probability averaged over a {area:.2f} ha disk ({int(footprint.sum())} px of "
        f"{dx:g} x {dy:g} m) for the FAO FRA 2020 minimum forest area of {area_ha:g} ha"
    )
    if capped:
        text += f" (radius capped at {MAX_RADIUS_PX} px)"
    return MappingUnit(max(footprint.shape) // 2, footprint, text)


def _disk_of_area(area_m2: float, dy: float, dx: float) -> np.ndarray:
    """The pixels whose centres lie within a distance of the centre pixel, the distance
    chosen so that their total area is closest to ``area_m2`` (radius <= MAX_RADIUS_PX)."""
    oy, ox = np.mgrid[-MAX_RADIUS_PX : MAX_RADIUS_PX + 1, -MAX_RADIUS_PX : MAX_RADIUS_PX + 1]
    distance2 = (oy * dy) ** 2 + (ox * dx) ** 2
    distance2 = np.where(oy**2 + ox**2 <= MAX_RADIUS_PX**2, distance2, np.inf)
    levels = np.unique(distance2[np.isfinite(distance2)])
    areas = np.array([(distance2 <= d).sum() for d in levels]) * dy * dx
    footprint = distance2 <= levels[int(np.argmin(np.abs(areas - area_m2)))]
    rows, cols = np.flatnonzero(footprint.any(axis=1)), np.flatnonzero(footprint.any(axis=0))
    ry = min(rows[-1] - MAX_RADIUS_PX, MAX_RADIUS_PX)
    rx = min(cols[-1] - MAX_RADIUS_PX, MAX_RADIUS_PX)
    c = MAX_RADIUS_PX
    return footprint[c - ry : c + ry + 1, c - rx : c + rx + 1]


def pixel_size_m(series: xr.Dataset) -> tuple[float, float] | None:
    """(dy, dx) pixel size in metres from regular x/y coordinates and the CRS, else None."""
    from geoproc.products.canopy.composites import _crs_of

    crs = _crs_of(series)
    if crs is None:
        return None
    steps = []
    for dim in ("y", "x"):
        values = np.asarray(series[dim].values, dtype="float64")
        diffs = np.abs(np.diff(values))
        if diffs.size == 0 or diffs[0] == 0 or not np.allclose(diffs, diffs[0], rtol=1e-6):
            return None
        steps.append(float(diffs[0]))
    dy, dx = steps
    if crs.is_geographic:
        lat = float(np.mean(np.asarray(series["y"].values, dtype="float64")))
        metres_per_degree = 111_320.0
        return dy * metres_per_degree, dx * metres_per_degree * math.cos(math.radians(lat))
    factor = crs.axis_info[0].unit_conversion_factor if crs.axis_info else 1.0
    return dy * factor, dx * factor


def area_mean(p_tree: np.ndarray | da.Array, unit: MappingUnit) -> np.ndarray | da.Array:
    """Mean of ``p_tree`` (y, x; NaN = no data) over the clear pixels of the disk around
    each pixel; NaN stays NaN. Lazy input stays lazy (overlapping blocks, no padding at
    the image edge, so any chunking gives the same values)."""
    if unit.radius_px == 0:
        return p_tree
    if isinstance(p_tree, da.Array):
        depth = {0: unit.footprint.shape[0] // 2, 1: unit.footprint.shape[1] // 2}
        return da.map_overlap(
            _disk_mean,
            p_tree,
            depth=depth,
            boundary="none",
            dtype="float32",
            footprint=unit.footprint,
        )
    return _disk_mean(np.asarray(p_tree), footprint=unit.footprint)


def _disk_mean(p: np.ndarray, footprint: np.ndarray) -> np.ndarray:
    ok = np.isfinite(p)
    weights = footprint.astype("float64")
    total = ndimage.correlate(np.where(ok, p, 0.0).astype("float64"), weights, mode="constant")
    count = ndimage.correlate(ok.astype("float64"), weights, mode="constant")
    return np.where(ok, total / np.maximum(count, 1.0), np.nan).astype("float32")
