"""The fixed processing grid: AOI -> UTM tiles whose edges never move between runs.

Why a fixed grid: a tile computed today and the same tile computed next month must land on
the same pixels, so appends, products and mosaics line up without resampling. Each tile
lives in exactly one UTM zone (WGS 84 / UTM, EPSG:326zz north, 327zz south) and is never
reprojected across zones; an AOI that spans zones yields tiles in each zone it touches
(overlapping near the zone edge, as the MGRS/HLS tiling does).

Tile contract (the sample archive is built to match it):
  * tile side = ``tile_size_px * resolution`` metres (default 1024 x 30 m = 30 720 m);
  * tile edges lie on multiples of the tile side in the zone's UTM coordinates
    (false easting 500 000 m and, in the south, false northing 10 000 000 m included);
  * tile id ``{zone:02d}{N|S}_{col:04d}_{row:04d}``, e.g. ``32N_0023_0174``:
    the tile covers easting ``[col*side, (col+1)*side)`` and northing
    ``[row*side, (row+1)*side)``; column and row count from the projection origin, so
    the id alone (plus tile size and resolution) gives the exact extent.

UTM zones follow the regular 6-degree rule (Snyder 1987, "Map Projections: A Working
Manual", USGS PP 1395, ch. 8); the Norway/Svalbard exceptions are deliberately not applied
so a zone is a pure function of longitude.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import shapely
from affine import Affine
from pyproj import CRS, Transformer
from shapely import box, ops
from shapely.geometry import MultiPolygon, Polygon, mapping, shape
from shapely.geometry.base import BaseGeometry

from geoproc.errors import InvalidAOIError

DEFAULT_TILE_SIZE_PX = 1024
DEFAULT_RESOLUTION = 30.0
TILE_ID_PATTERN = re.compile(r"^(?P<zone>\d{2})(?P<hemi>[NS])_(?P<col>\d{4})_(?P<row>\d{4})$")


@dataclass(frozen=True)
class Tile:
    """One processing tile: a square of pixels in one UTM zone."""

    zone: int
    """UTM zone number 1..60."""
    south: bool
    """True for the southern-hemisphere projection (EPSG:327zz)."""
    col: int
    """Easting index: the tile starts at ``col * side`` metres."""
    row: int
    """Northing index: the tile starts (bottom edge) at ``row * side`` metres."""
    tile_size_px: int = DEFAULT_TILE_SIZE_PX
    """Pixels along each side."""
    resolution: float = DEFAULT_RESOLUTION
    """Pixel size in metres."""

    @property
    def id(self) -> str:
        return f"{self.zone:02d}{'S' if self.south else 'N'}_{self.col:04d}_{self.row:04d}"

    @property
    def epsg(self) -> int:
        return (32700 if self.south else 32600) + self.zone

    @property
    def crs(self) -> CRS:
        return CRS.from_epsg(self.epsg)

    @property
    def side(self) -> float:
        return self.tile_size_px * self.resolution

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) in the tile's UTM metres."""
        s = self.side
        return (self.col * s, self.row * s, (self.col + 1) * s, (self.row + 1) * s)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.tile_size_px, self.tile_size_px)

    @property
    def transform(self) -> Affine:
        xmin, _, _, ymax = self.bounds
        return Affine(self.resolution, 0.0, xmin, 0.0, -self.resolution, ymax)

    @property
    def x_coords(self) -> np.ndarray:
        """Pixel-centre eastings, west to east."""
        xmin = self.bounds[0]
        return xmin + (np.arange(self.tile_size_px) + 0.5) * self.resolution

    @property
    def y_coords(self) -> np.ndarray:
        """Pixel-centre northings, north to south (row 0 is the top)."""
        ymax = self.bounds[3]
        return ymax - (np.arange(self.tile_size_px) + 0.5) * self.resolution

    @cached_property
    def footprint_lonlat(self) -> BaseGeometry:
        """The tile outline in lon/lat (densified so edges follow the projection)."""
        to_ll = Transformer.from_crs(self.crs, 4326, always_xy=True)
        poly = box(*self.bounds).segmentize(self.side / 16)
        return reproject_geometry(poly, to_ll)

    @property
    def centre_lonlat(self) -> tuple[float, float]:
        xmin, ymin, xmax, ymax = self.bounds
        lon, lat = Transformer.from_crs(self.crs, 4326, always_xy=True).transform(
            (xmin + xmax) / 2, (ymin + ymax) / 2
        )
        return float(lon), float(lat)


def parse_tile_id(
    tile_id: str,
    *,
    tile_size_px: int = DEFAULT_TILE_SIZE_PX,
    resolution: float = DEFAULT_RESOLUTION,
) -> Tile:
    """A tile from its id, e.g. ``32N_0023_0174``."""
    m = TILE_ID_PATTERN.match(tile_id.strip())
    if not m or not 1 <= int(m["zone"]) <= 60:
        raise InvalidAOIError(
            f"{tile_id!r} is not a tile id: use ZZH_CCCC_RRRR, e.g. 32N_0023_0174 "
            "(UTM zone 01-60, hemisphere N or S, column, row)."
        )
    return Tile(
        int(m["zone"]),
        m["hemi"] == "S",
        int(m["col"]),
        int(m["row"]),
        tile_size_px=tile_size_px,
        resolution=resolution,
    )


def utm_zone(lon: float) -> int:
    """Regular 6-degree UTM zone of a longitude (180 belongs to zone 60)."""
    return min(int(math.floor((lon + 180.0) / 6.0)) + 1, 60)


def parse_aoi(aoi: str | os.PathLike | dict | BaseGeometry) -> BaseGeometry | list[str]:
    """An AOI as a lon/lat geometry, or a list of tile ids.

    Accepts ``minlon,minlat,maxlon,maxlat``, a GeoJSON file path, a GeoJSON dict or shapely
    geometry, or comma-separated tile ids.
    """
    if isinstance(aoi, BaseGeometry):
        return _check_geometry(aoi, str(aoi)[:60])
    if isinstance(aoi, dict):
        return _check_geometry(_geojson_geometry(aoi), "the GeoJSON")
    text = os.fspath(aoi).strip()
    parts = [p.strip() for p in text.split(",")]
    if parts and all(TILE_ID_PATTERN.match(p) for p in parts):
        return parts
    if len(parts) == 4:
        try:
            west, south, east, north = (float(p) for p in parts)
        except ValueError:
            west = None
        if west is not None:
            if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
                raise InvalidAOIError(
                    f"--aoi {text!r}: a bbox is WEST,SOUTH,EAST,NORTH in degrees with west < east "
                    "and south < north (longitudes -180..180, latitudes -90..90)."
                )
            return box(west, south, east, north)
    path = Path(text)
    if path.suffix.lower() in (".json", ".geojson") or path.exists():
        if not path.is_file():
            raise InvalidAOIError(
                f"--aoi file {text!r} does not exist: pass an existing GeoJSON file."
            )
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise InvalidAOIError(
                f"--aoi file {text!r} is not valid JSON ({exc}); fix the file."
            ) from exc
        return _check_geometry(_geojson_geometry(doc), text)
    raise InvalidAOIError(
        f"--aoi {text!r} is neither a bbox (WEST,SOUTH,EAST,NORTH), a GeoJSON file nor tile ids "
        "(e.g. 32N_0023_0174): pass one of those."
    )


def _geojson_geometry(doc: dict) -> BaseGeometry:
    kind = doc.get("type")
    try:
        if kind == "FeatureCollection":
            geoms = [shape(f["geometry"]) for f in doc.get("features", []) if f.get("geometry")]
            if not geoms:
                raise InvalidAOIError("The AOI FeatureCollection has no geometries: add a polygon.")
            return ops.unary_union(geoms)
        if kind == "Feature":
            return shape(doc["geometry"])
        return shape(doc)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InvalidAOIError(
            f"The AOI is not valid GeoJSON ({exc}): pass a Polygon or Feature."
        ) from exc


def _check_geometry(geom: BaseGeometry, label: str) -> BaseGeometry:
    if geom.is_empty or not isinstance(geom, Polygon | MultiPolygon):
        raise InvalidAOIError(
            f"The AOI {label!r} is not a polygon (got {geom.geom_type}): pass a Polygon or MultiPolygon."
        )
    minx, miny, maxx, maxy = geom.bounds
    if minx < -180 or maxx > 180 or miny < -90 or maxy > 90:
        raise InvalidAOIError(
            f"The AOI {label!r} is outside lon -180..180 / lat -90..90: pass lon/lat (EPSG:4326) coordinates."
        )
    if not geom.is_valid:
        geom = geom.buffer(0)
    if geom.is_empty or geom.area == 0:
        raise InvalidAOIError(
            f"The AOI {label!r} has zero area (a line, a point or a collapsed ring): pass a "
            "polygon that encloses an area."
        )
    return geom


def tiles_for_aoi(
    aoi: str | os.PathLike | dict | BaseGeometry,
    *,
    tile_size_px: int = DEFAULT_TILE_SIZE_PX,
    resolution: float = DEFAULT_RESOLUTION,
) -> list[Tile]:
    """Every grid tile that intersects the AOI, sorted by id (deterministic order)."""
    if tile_size_px <= 0 or resolution <= 0:
        raise InvalidAOIError(
            f"--tile-size ({tile_size_px}) and resolution ({resolution}) must be positive."
        )
    parsed = parse_aoi(aoi)
    if isinstance(parsed, list):
        tiles = {parse_tile_id(t, tile_size_px=tile_size_px, resolution=resolution) for t in parsed}
        return sorted(tiles, key=lambda t: t.id)
    found: dict[str, Tile] = {}
    for zone, south, part in _zone_parts(parsed):
        for tile in _tiles_in_zone(part, zone, south, tile_size_px, resolution):
            found[tile.id] = tile
    if not found:
        raise InvalidAOIError(
            "The AOI covers no land tile between 80.5S and 84.5N: pass a larger AOI."
        )
    return sorted(found.values(), key=lambda t: t.id)


def _zone_parts(parsed: BaseGeometry) -> Iterable[tuple[int, bool, BaseGeometry]]:
    """(zone, south, part of the AOI in that zone and hemisphere), for every part with area."""
    west, _, east, _ = parsed.bounds
    for zone in range(utm_zone(west), utm_zone(east) + 1):
        zone_west = -180.0 + (zone - 1) * 6.0
        for south, lat_band in ((False, (0.0, 84.5)), (True, (-80.5, 0.0))):
            part = parsed.intersection(box(zone_west, lat_band[0], zone_west + 6.0, lat_band[1]))
            if not part.is_empty and part.area > 0:
                yield zone, south, part


def estimate_tile_count(
    aoi: str | os.PathLike | dict | BaseGeometry,
    *,
    tile_size_px: int = DEFAULT_TILE_SIZE_PX,
    resolution: float = DEFAULT_RESOLUTION,
) -> int:
    """How many tiles `tiles_for_aoi` would return, computed without enumerating them.

    Why: a continent or the whole globe is hundreds of thousands of tiles; the count must be
    known (and refused past a limit) in well under a second. Per UTM zone part, the tiles a
    region touches are about ``area / side**2 + perimeter / (2 * side) + 1`` (exact for a
    grid-aligned rectangle: ``(w/s + 1) * (h/s + 1)``); area and perimeter are geodesic on
    WGS 84 (UTM scale error < 0.1 % inside a zone), and never more than the cells of the
    part's bounding box. Tile-id AOIs are counted exactly.
    """
    from pyproj import Geod

    if tile_size_px <= 0 or resolution <= 0:
        raise InvalidAOIError(
            f"--tile-size ({tile_size_px}) and resolution ({resolution}) must be positive."
        )
    parsed = parse_aoi(aoi)
    if isinstance(parsed, list):
        return len(set(parsed))
    geod = Geod(ellps="WGS84")
    side = tile_size_px * resolution
    total = 0
    for _zone, _south, part in _zone_parts(parsed):
        area, perimeter = geod.geometry_area_perimeter(part.segmentize(0.25))
        estimate = abs(area) / side**2 + perimeter / (2 * side) + 1
        total += math.ceil(min(estimate, _bbox_cells(part, side)))
    return total


def _bbox_cells(part: BaseGeometry, side: float) -> float:
    """Grid cells of a zone part's bounding box, from its extent in metres (no projection)."""
    west, south, east, north = part.bounds
    metres_per_degree = 111_320.0
    width = (east - west) * metres_per_degree * math.cos(math.radians(min(abs(south), abs(north))))
    height = (north - south) * metres_per_degree
    return (width / side + 2) * (height / side + 2)


def _tiles_in_zone(
    part: BaseGeometry, zone: int, south: bool, tile_size_px: int, resolution: float
) -> Iterable[Tile]:
    epsg = (32700 if south else 32600) + zone
    to_utm = Transformer.from_crs(4326, epsg, always_xy=True)
    projected = reproject_geometry(part.segmentize(0.05), to_utm)
    side = tile_size_px * resolution
    xmin, ymin, xmax, ymax = projected.bounds
    for col in range(int(math.floor(xmin / side)), int(math.floor(xmax / side)) + 1):
        for row in range(int(math.floor(ymin / side)), int(math.floor(ymax / side)) + 1):
            cell = box(col * side, row * side, (col + 1) * side, (row + 1) * side)
            inter = cell.intersection(projected)
            if not inter.is_empty and inter.area > 0:
                yield Tile(zone, south, col, row, tile_size_px=tile_size_px, resolution=resolution)


def reproject_geometry(geom: BaseGeometry, transformer: Transformer) -> BaseGeometry:
    """A geometry's vertices pushed through a pyproj transformer (always_xy)."""

    def _fn(xy: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geom, _fn)


def tile_geojson(tile: Tile) -> dict:
    """The tile footprint as a GeoJSON geometry in lon/lat (for STAC searches)."""
    return mapping(tile.footprint_lonlat)
