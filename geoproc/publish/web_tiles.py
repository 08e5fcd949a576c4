"""Web-mercator XYZ PNG tiles of one layer, seamless across processing tiles and UTM zones.

Tiles follow the OGC Two Dimensional Tile Matrix Set standard (OGC 17-083r4), matrix set
``WebMercatorQuad`` from morecantile. Why render every web tile from *all* processing-tile
COGs that touch it (rio-tiler's ``mosaic_reader``, first valid pixel wins): processing tiles
live in their own UTM zones, so a web tile that straddles a zone meridian needs pixels from
two projections; warping each source into the web tile and filling nodata from the next one
leaves neither seam nor gap. Class maps are warped with nearest neighbour (no invented
classes), continuous maps with bilinear; both read the COG overviews at low zooms.

Zoom levels are bounded: the maximum is the zoom whose pixel is closest to the native
ground resolution (30 m -> 12 at mid latitudes), the minimum the deepest zoom at which the
whole AOI fits in a few tiles, so a run never renders a world pyramid.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import morecantile
import numpy as np
import rasterio
from rasterio.warp import transform_bounds
from rio_tiler.errors import EmptyMosaicError
from rio_tiler.io import Reader
from rio_tiler.models import ImageData
from rio_tiler.mosaic import mosaic_reader
from rio_tiler.utils import render

from geoproc.publish.colormaps import LayerStyle

TMS = morecantile.tms.get("WebMercatorQuad")
TILE_SIZE = 256
MAX_TILES_AT_MIN_ZOOM = 4


@dataclass(frozen=True)
class ZoomRange:
    minzoom: int
    maxzoom: int


def zoom_range(
    bounds_lonlat: tuple[float, float, float, float], *, resolution_m: float
) -> ZoomRange:
    """Zooms from the native ground resolution and the AOI size (see module docstring)."""
    west, south, east, north = bounds_lonlat
    mid_lat = max(min((south + north) / 2.0, 85.0), -85.0)
    mercator_res = resolution_m / math.cos(math.radians(mid_lat))
    maxzoom = int(TMS.zoom_for_res(mercator_res, max_z=22))
    minzoom = 0
    for z in range(maxzoom, -1, -1):
        if len(list(TMS.tiles(west, south, east, north, [z]))) <= MAX_TILES_AT_MIN_ZOOM:
            minzoom = z
            break
    return ZoomRange(minzoom=minzoom, maxzoom=maxzoom)


def tiles_for(
    bounds_lonlat: tuple[float, float, float, float], zooms: ZoomRange
) -> list[morecantile.Tile]:
    west, south, east, north = bounds_lonlat
    return list(TMS.tiles(west, south, east, north, list(range(zooms.minzoom, zooms.maxzoom + 1))))


def render_tile(
    sources: list[str],
    tile: morecantile.Tile,
    *,
    style: LayerStyle,
    scale: float = 1.0,
    offset: float = 0.0,
) -> bytes | None:
    """PNG bytes of one web tile mosaicked from the source COG paths; None when empty.

    ``scale``/``offset`` turn stored (packed) values into the physical units of the ramp.
    """
    method = "nearest" if style.is_categorical else "bilinear"

    def _read(path: str, x: int, y: int, z: int) -> ImageData:
        with Reader(path) as src:
            return src.tile(
                x,
                y,
                z,
                tilesize=TILE_SIZE,
                resampling_method=method,
                reproject_method=method,
            )

    try:
        image, _ = mosaic_reader(sources, _read, tile.x, tile.y, tile.z, threads=0)
    except EmptyMosaicError:
        return None
    valid = ~np.ma.getmaskarray(image.array)[0]
    if not valid.any():
        return None
    band = np.ma.getdata(image.array)[0]
    if style.is_classes:
        data = band.astype("uint8") if band.dtype != np.uint8 else band
        colormap = style.class_colormap()
        known = np.isin(data, list(colormap))
        valid &= known
    else:
        data = style.to_ramp_index(band.astype("float64") * scale + offset)
        colormap = style.ramp_lut()
    mask = np.where(valid, 255, 0).astype("uint8")
    return render(data[np.newaxis], mask, img_format="PNG", colormap=colormap, ZLEVEL=6)


def iter_tiles(
    sources: list[str],
    bounds_lonlat: tuple[float, float, float, float],
    *,
    style: LayerStyle,
    zooms: ZoomRange,
    workers: int | None = None,
) -> Iterator[tuple[morecantile.Tile, bytes]]:
    """(tile, PNG) for every non-empty tile of the pyramid over the bounds.

    Each web tile only opens the sources whose lon/lat bounds touch it, so a region of many
    processing tiles costs per web tile what its few neighbours cost, not all of them.
    """
    footprints = [(path, _lonlat_bounds(path)) for path in sources]
    scale, offset = _scale_offset(sources[0]) if sources else (1.0, 0.0)

    def _one(tile: morecantile.Tile) -> tuple[morecantile.Tile, bytes | None]:
        b = TMS.bounds(tile)
        touching = [
            path
            for path, (w, s, e, n) in footprints
            if w <= b.right and e >= b.left and s <= b.top and n >= b.bottom
        ]
        if not touching:
            return tile, None
        return tile, render_tile(touching, tile, style=style, scale=scale, offset=offset)

    # GDAL releases the GIL while reading and warping, so threads overlap tiles; map()
    # keeps the tile order, and each tile's bytes do not depend on the thread.
    workers = workers or min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for tile, png in pool.map(_one, tiles_for(bounds_lonlat, zooms)):
            if png is not None:
                yield tile, png


def _lonlat_bounds(path: str) -> tuple[float, float, float, float]:
    with rasterio.open(path) as src:
        return transform_bounds(src.crs, "EPSG:4326", *src.bounds, densify_pts=21)


def _scale_offset(path: str) -> tuple[float, float]:
    with rasterio.open(path) as src:
        return float(src.scales[0] or 1.0), float(src.offsets[0] or 0.0)
