"""Where the sample world lies: the demo AOI, the processing tiles it touches and the granule grids.

The region straddles the UTM zone 32/33 boundary at 12 degrees E, 47.5 degrees N (the
Salzach/Inn foreland), so the pipeline has to handle two projections side by side, the way
real HLS and Sentinel-1 archives force it to (HLS v2.0 user guide: products are gridded on
the Sentinel-2 MGRS tiles, each in its own UTM zone; adjacent tiles overlap, so one
overpass yields same-day duplicates). Every granule grid has pixel edges on multiples of
30 m in UTM coordinates, and granules in one zone overlap by about 30 %.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from pyproj import Transformer
from shapely.geometry import Polygon, box

from geoproc.errors import UnknownNameError

RESOLUTION = 30.0
CENTER_LON = 12.0
CENTER_LAT = 47.5
ZONES = (32, 33)
_KM_PER_DEG_LAT = 110.574
_KM_PER_DEG_LON = 111.320 * math.cos(math.radians(CENTER_LAT))


@dataclass(frozen=True)
class SizeConfig:
    """How big the archive is; `small` is the test bed, `medium` the demo."""

    name: str
    tile_size_px: int
    """Processing tile size (pixels of 30 m) the demo should use; recorded in aoi.geojson."""
    granule_px: int
    """Side of one granule (one MGRS-like frame) in pixels."""
    aoi_bounds: tuple[float, float, float, float]
    """AOI box (west, south, east, north) in degrees: it crosses 12 E and touches exactly one
    row of processing tiles; for `small` two tiles in zone 32 and one in zone 33."""
    blocksize: int
    """COG tile size."""


SIZES = {
    "small": SizeConfig("small", 128, 160, (11.984, 47.501, 12.026, 47.524), 256),
    "medium": SizeConfig("medium", 512, 600, (11.95, 47.42, 12.03, 47.525), 512),
}


def size_config(size: str) -> SizeConfig:
    if size not in SIZES:
        raise UnknownNameError(f"Unknown archive size {size!r}: pass --size {' or '.join(SIZES)}.")
    return SIZES[size]


def to_local_km(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kilometres east/north of the region centre: one continuous frame for both zones."""
    return (lon - CENTER_LON) * _KM_PER_DEG_LON, (lat - CENTER_LAT) * _KM_PER_DEG_LAT


def epsg_of_zone(zone: int) -> int:
    return 32600 + zone


def mgrs_square(zone: int, easting: float, northing: float, lat: float) -> str:
    """The MGRS grid-zone + 100 km square id (e.g. `32UQU`) of a UTM point."""
    band = "CDEFGHJKLMNPQRSTUVWX"[int((lat + 80) // 8)]
    columns = {1: "ABCDEFGH", 2: "JKLMNPQR", 0: "STUVWXYZ"}[zone % 3]
    column = columns[int(easting // 100_000) - 1]
    rows = "ABCDEFGHJKLMNPQRSTUV"
    row_index = int(northing // 100_000) % 20
    if zone % 2 == 0:
        row_index = (row_index + 5) % 20
    return f"{zone}{band}{column}{rows[row_index]}"


@dataclass(frozen=True)
class Granule:
    """One MGRS-like frame: a fixed 30 m grid in one UTM zone (col/row are pixel indices)."""

    name: str
    """Tile label as HLS writes it without the `T` (e.g. `32UQU`)."""
    zone: int
    col0: int
    """Column of the left edge in the global 30 m lattice of the zone (x = col * 30)."""
    row0: int
    """Row index of the top edge counted downwards from y = 0 (y = -row * 30)."""
    width: int
    height: int

    @property
    def epsg(self) -> int:
        return epsg_of_zone(self.zone)

    @property
    def transform(self) -> tuple[float, ...]:
        """Affine coefficients (a, b, c, d, e, f) as in `proj:transform`."""
        return (RESOLUTION, 0.0, self.col0 * RESOLUTION, 0.0, -RESOLUTION, -self.row0 * RESOLUTION)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        x0, y1 = self.col0 * RESOLUTION, -self.row0 * RESOLUTION
        return (x0, y1 - self.height * RESOLUTION, x0 + self.width * RESOLUTION, y1)

    def footprint_lonlat(self, *, densify: int = 8) -> Polygon:
        """Geographic outline (densified edges, so the curved UTM frame is honest)."""
        x0, y0, x1, y1 = self.bounds
        t = np.linspace(0.0, 1.0, densify + 1)[:-1]
        xs = np.concatenate(
            [x0 + (x1 - x0) * t, np.full_like(t, x1), x1 - (x1 - x0) * t, np.full_like(t, x0)]
        )
        ys = np.concatenate(
            [np.full_like(t, y0), y0 + (y1 - y0) * t, np.full_like(t, y1), y1 - (y1 - y0) * t]
        )
        lon, lat = _to_lonlat(self.zone).transform(xs, ys)
        return Polygon(zip(np.round(lon, 6), np.round(lat, 6), strict=True))


@dataclass(frozen=True)
class ZoneGrid:
    """The union grid of all granules of one zone; the world is rendered once on it."""

    zone: int
    col0: int
    row0: int
    width: int
    height: int
    granules: tuple[Granule, ...]

    def window(self, granule: Granule) -> tuple[slice, slice]:
        """(rows, cols) slices of a granule inside the union grid."""
        r = granule.row0 - self.row0
        c = granule.col0 - self.col0
        return slice(r, r + granule.height), slice(c, c + granule.width)

    @cached_property
    def lonlat(self) -> tuple[np.ndarray, np.ndarray]:
        """Longitude/latitude of every pixel centre."""
        cols = (self.col0 + np.arange(self.width) + 0.5) * RESOLUTION
        rows = -(self.row0 + np.arange(self.height) + 0.5) * RESOLUTION
        xx, yy = np.meshgrid(cols, rows)
        lon, lat = _to_lonlat(self.zone).transform(xx, yy)
        return lon, lat

    @cached_property
    def local_km(self) -> tuple[np.ndarray, np.ndarray]:
        return to_local_km(*self.lonlat)


@dataclass(frozen=True)
class Region:
    """AOI, processing tiles and granules of one archive size."""

    config: SizeConfig
    aoi: Polygon
    zones: tuple[ZoneGrid, ...]
    tiles: dict[int, list[tuple[int, int]]]
    """Per zone: (tile column, tile row) indices of the processing tiles touching the AOI;
    tile (i, j) spans x in [i*T, (i+1)*T), y in [j*T, (j+1)*T) with T = tile_size_px * 30 m."""

    @property
    def granules(self) -> tuple[Granule, ...]:
        return tuple(g for z in self.zones for g in z.granules)


def _to_lonlat(zone: int) -> Transformer:
    return Transformer.from_crs(epsg_of_zone(zone), 4326, always_xy=True)


def _to_utm(zone: int) -> Transformer:
    return Transformer.from_crs(4326, epsg_of_zone(zone), always_xy=True)


def _aoi(config: SizeConfig) -> Polygon:
    return box(*config.aoi_bounds)


def _aoi_in_zone(aoi: Polygon, zone: int) -> Polygon:
    lon, lat = np.asarray(aoi.exterior.coords).T
    t = np.linspace(0, 1, 33)
    dense_lon = np.concatenate([lon[i] + (lon[i + 1] - lon[i]) * t for i in range(len(lon) - 1)])
    dense_lat = np.concatenate([lat[i] + (lat[i + 1] - lat[i]) * t for i in range(len(lat) - 1)])
    x, y = _to_utm(zone).transform(dense_lon, dense_lat)
    return Polygon(zip(x, y, strict=True))


def _split(start: int, length: int, granule_px: int) -> list[int]:
    """Start offsets of >= 2 granules with ~30 % overlap that cover [start, start+length)."""
    step = int(round(granule_px * 0.7))
    n = max(2, math.ceil(max(length - granule_px, 0) / step) + 1)
    span = granule_px + (n - 1) * step
    first = start - (span - length) // 2
    return [first + i * step for i in range(n)]


def _split_rows(start: int, length: int, granule_px: int) -> list[int]:
    step = int(round(granule_px * 0.7))
    n = max(1, math.ceil(max(length - granule_px, 0) / step) + 1)
    span = granule_px + (n - 1) * step
    first = start - (span - length) // 2
    return [first + i * step for i in range(n)]


def build_region(size: str) -> Region:
    """Lay out the AOI, the processing tiles it touches in each zone, and granules covering them."""
    config = size_config(size)
    aoi = _aoi(config)
    tile_m = config.tile_size_px * RESOLUTION
    margin_px = 4
    zones, tiles = [], {}
    for zone in ZONES:
        x0, y0, x1, y1 = _aoi_in_zone(aoi, zone).bounds
        ti0, ti1 = math.floor(x0 / tile_m), math.floor(x1 / tile_m)
        tj0, tj1 = math.floor(y0 / tile_m), math.floor(y1 / tile_m)
        tiles[zone] = [(i, j) for j in range(tj0, tj1 + 1) for i in range(ti0, ti1 + 1)]
        col_start = ti0 * config.tile_size_px - margin_px
        col_len = (ti1 - ti0 + 1) * config.tile_size_px + 2 * margin_px
        row_start = -(tj1 + 1) * config.tile_size_px - margin_px
        row_len = (tj1 - tj0 + 1) * config.tile_size_px + 2 * margin_px
        cols = _split(col_start, col_len, config.granule_px)
        rows = _split_rows(row_start, row_len, config.granule_px)
        granules, used = [], set()
        for r in rows:
            for c in cols:
                cx = (c + config.granule_px / 2) * RESOLUTION
                cy = -(r + config.granule_px / 2) * RESOLUTION
                _, lat = _to_lonlat(zone).transform(cx, cy)
                name = _unique_label(mgrs_square(zone, cx, cy, lat), used)
                used.add(name)
                granules.append(Granule(name, zone, c, r, config.granule_px, config.granule_px))
        zc0, zr0 = min(cols), min(rows)
        zones.append(
            ZoneGrid(
                zone,
                zc0,
                zr0,
                max(cols) + config.granule_px - zc0,
                max(rows) + config.granule_px - zr0,
                tuple(granules),
            )
        )
    return Region(config, aoi, tuple(zones), tiles)


def _unique_label(label: str, used: set[str]) -> str:
    """Small granules share one 100 km square; advance the row letter to keep names unique."""
    rows = "ABCDEFGHJKLMNPQRSTUV"
    while label in used:
        label = label[:-1] + rows[(rows.index(label[-1]) + 1) % len(rows)]
    return label
