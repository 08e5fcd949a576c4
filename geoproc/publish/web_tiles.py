"""Web-mercator XYZ PNG tiles of one layer, seamless across processing tiles and UTM zones.

Tiles follow the OGC Two Dimensional Tile Matrix Set standard (OGC 17-083r4), matrix set
``WebMercatorQuad`` from morecantile. Why render every web tile from *all* processing-tile
COGs that touch it (rio-tiler's ``mosaic_reader``, first valid pixel wins): processing tiles
live in their own UTM zones, so a web tile that straddles a zone meridian needs pixels from
two projections; warping each source into the web tile and filling nodata from the next one
leaves neither seam nor gap. Class maps are warped with nearest neighbour (no invented
classes), continuous maps with bilinear; both read the COG overviews at low zooms.

Zoom levels are bounded: the maximum is the zoom whose pixel is closest to the native
ground resolution (30 m -> 12 at mid latitudes; the viewer overzooms beyond it instead of
publishing more tiles), the minimum the deepest zoom at which the whole AOI fits in a few
tiles, or lower for a small AOI: up to `CONTEXT_ZOOMS` below the maximum while the AOI still
spans `MIN_AOI_PX` pixels (8-12 for a 15 km AOI, 10-12 for the 3 km sample AOI), so it can
be zoomed out to see where it lies at the cost of a few tiles per date; a run never renders
a world pyramid.

Values for the viewer's click and time series: at the maximum zoom each web tile also gets
a value payload (`value_payload`), the stored values of the COG pixel under each web pixel
centre (nearest neighbour, never interpolated), zlib-compressed in a one-line JavaScript
file. Why JavaScript and not PNG or JSON: the page must work opened from disk, and Chromium
refuses ``fetch`` of ``file://`` URLs and taints canvases drawn from ``file://`` images, so
``getImageData`` cannot decode value-encoded PNGs; a ``<script>`` element loads from disk
and over HTTP alike.
"""

from __future__ import annotations

import base64
import json
import math
import os
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import morecantile
import numpy as np
import rasterio
from pyproj import Transformer
from rasterio.warp import transform_bounds
from rasterio.windows import Window
from rio_tiler.errors import EmptyMosaicError
from rio_tiler.io import Reader
from rio_tiler.models import ImageData
from rio_tiler.mosaic import mosaic_reader
from rio_tiler.utils import render

from geoproc.publish.colormaps import LayerStyle

TMS = morecantile.tms.get("WebMercatorQuad")
TILE_SIZE = 256
MAX_TILES_AT_MIN_ZOOM = 4
CONTEXT_ZOOMS = 4
"""The pyramid reaches up to this many zooms below the native one for context..."""
MIN_AOI_PX = 16
"""...but stops at the zoom where the AOI's longer side is still at least this many pixels."""
VALUES_CALLBACK = "geoprocValues"
"""The function a value payload calls (defined by the viewer page)."""


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
    # Zoom out for context, but not below the zoom where the AOI shrinks to a speck: the
    # viewer has no basemap, so those tiles would show a dot on an empty background.
    span = max((east - west) / 360.0, abs(_merc(north) - _merc(south)))
    speck = next((z for z in range(maxzoom + 1) if span * TILE_SIZE * 2**z >= MIN_AOI_PX), maxzoom)
    context = max(maxzoom - CONTEXT_ZOOMS, speck)
    return ZoomRange(minzoom=max(0, min(minzoom, context)), maxzoom=maxzoom)


def _merc(lat: float) -> float:
    """Web-mercator y of a latitude as a fraction of the world's height."""
    lat = max(min(lat, 85.0), -85.0)
    return math.log(math.tan(math.pi / 4 + math.radians(lat) / 2)) / (2 * math.pi)


@dataclass(frozen=True)
class WebTile:
    """One rendered web tile: its PNG and, at the maximum zoom, its value payload."""

    tile: morecantile.Tile
    png: bytes
    values: bytes | None = None
    """`value_payload` bytes (maximum zoom only)."""
    counts: dict[int, int] | None = None
    """Web pixels per class value (class maps at the maximum zoom): the date's class areas."""


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
    read = _mosaic(sources, tile, "nearest" if style.is_categorical else "bilinear")
    if read is None:
        return None
    return _render(*read, style=style, scale=scale, offset=offset)


def _render(
    band: np.ndarray, valid: np.ndarray, *, style: LayerStyle, scale: float, offset: float
) -> bytes | None:
    """PNG of stored values in the layer's colours (classes or ramp); None when nothing shows."""
    valid = valid.copy()
    if style.is_classes:
        data = band.astype("uint8") if band.dtype != np.uint8 else band
        colormap = style.class_colormap()
        valid &= np.isin(data, list(colormap))
    else:
        data = style.to_ramp_index(band.astype("float64") * scale + offset)
        colormap = style.ramp_lut()
    if not valid.any():
        return None
    mask = np.where(valid, 255, 0).astype("uint8")
    return render(data[np.newaxis], mask, img_format="PNG", colormap=colormap, ZLEVEL=6)


def _mosaic(
    sources: list[str], tile: morecantile.Tile, method: str
) -> tuple[np.ndarray, np.ndarray] | None:
    """(stored values, valid mask) of one web tile from the sources; None when empty."""

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
    return np.ma.getdata(image.array)[0], valid


def exact_values(
    sources: list[str], tile: morecantile.Tile
) -> tuple[np.ndarray, np.ndarray] | None:
    """(stored values, valid mask) of the source pixel containing each web pixel's centre.

    Why not rio-tiler's nearest read: it warps through an intermediate VRT grid with GDAL's
    approximate transformer (0.125 px error), so a web pixel near a source pixel edge can
    take the neighbour's value; a click must show exactly what the COG holds there, as
    ``rasterio``'s ``sample``/``index`` find it. The first source with data wins, as in the
    drawn mosaic. None when no source has data in the tile.
    """
    b = TMS.xy_bounds(tile)
    cols = b.left + (np.arange(TILE_SIZE) + 0.5) * (b.right - b.left) / TILE_SIZE
    rows = b.top - (np.arange(TILE_SIZE) + 0.5) * (b.top - b.bottom) / TILE_SIZE
    mx, my = np.meshgrid(cols, rows)
    out: np.ndarray | None = None
    valid = np.zeros(mx.shape, dtype=bool)
    for path in sources:
        with rasterio.open(path) as src:
            # A Transformer per call: pyproj transformers are not shared between threads.
            x, y = Transformer.from_crs("EPSG:3857", src.crs, always_xy=True).transform(mx, my)
            inv = ~src.transform
            col = np.floor(inv.a * x + inv.b * y + inv.c)
            row = np.floor(inv.d * x + inv.e * y + inv.f)
            todo = (row >= 0) & (row < src.height) & (col >= 0) & (col < src.width) & ~valid
            if not todo.any():
                continue
            r, c = row[todo].astype(int), col[todo].astype(int)
            r0, c0 = int(r.min()), int(c.min())
            window = Window(c0, r0, int(c.max()) - c0 + 1, int(r.max()) - r0 + 1)
            data = src.read(1, window=window, masked=True)
            picked = data[r - r0, c - c0]
            ok = ~np.ma.getmaskarray(picked)
            if np.issubdtype(data.dtype, np.floating):
                ok &= ~np.isnan(np.ma.getdata(picked))
            if out is None:
                out = np.zeros(mx.shape, dtype=data.dtype)
            where = np.flatnonzero(todo)[ok]
            out.flat[where] = np.ma.getdata(picked)[ok]
            valid.flat[where] = True
    if out is None or not valid.any():
        return None
    return out, valid


def value_payload(
    key: str, band: np.ndarray, valid: np.ndarray, *, scale: float, offset: float
) -> bytes:
    """The ``geoprocValues(key, {...})`` script of one tile's stored values.

    ``data`` is base64 of the zlib-compressed little-endian values, row-major 256x256, in
    the COG's own dtype; pixels without data hold ``nodata`` (NaN for floats: ``null``).
    """
    values = np.ascontiguousarray(band)
    floating = np.issubdtype(values.dtype, np.floating)
    if floating:
        nodata = None
        values = np.where(valid, values, np.nan).astype(values.dtype)
    else:
        info = np.iinfo(values.dtype)
        used = set(np.unique(values[valid]).tolist())
        nodata = next(v for v in (info.max, info.min, 0) if v not in used) if used else info.max
        values = np.where(valid, values, nodata).astype(values.dtype)
    raw = values.astype(values.dtype.newbyteorder("<"), copy=False).tobytes()
    meta = {
        "dtype": values.dtype.name,
        "nodata": nodata,
        "scale": scale,
        "offset": offset,
        "size": TILE_SIZE,
        "data": base64.b64encode(zlib.compress(raw, 6)).decode("ascii"),
    }
    body = json.dumps(meta, sort_keys=True, separators=(",", ":"))
    return f"{VALUES_CALLBACK}({json.dumps(key)},{body});\n".encode()


def iter_tiles(
    sources: list[str],
    bounds_lonlat: tuple[float, float, float, float],
    *,
    style: LayerStyle,
    zooms: ZoomRange,
    workers: int | None = None,
    values_key: str = "",
) -> Iterator[WebTile]:
    """Every non-empty tile of the pyramid over the bounds, in pyramid order.

    Tiles of the maximum zoom carry their value payload, keyed ``{values_key}/{z}/{x}/{y}``.

    Each web tile only opens the sources whose lon/lat bounds touch it, so a region of many
    processing tiles costs per web tile what its few neighbours cost, not all of them.
    """
    footprints = [(path, _lonlat_bounds(path)) for path in sources]
    scale, offset = _scale_offset(sources[0]) if sources else (1.0, 0.0)

    def _one(tile: morecantile.Tile) -> WebTile | None:
        b = TMS.bounds(tile)
        touching = [
            path
            for path, (w, s, e, n) in footprints
            if w <= b.right and e >= b.left and s <= b.top and n >= b.bottom
        ]
        if not touching:
            return None
        if tile.z != zooms.maxzoom:
            png = render_tile(touching, tile, style=style, scale=scale, offset=offset)
            return None if png is None else WebTile(tile, png)
        # The clicked value is the stored one, whatever the drawing uses.
        read = exact_values(touching, tile)
        if read is None:
            return None
        band, valid = read
        if style.is_categorical:
            png = _render(band, valid, style=style, scale=scale, offset=offset)
        else:
            png = render_tile(touching, tile, style=style, scale=scale, offset=offset)
        if png is None:
            return None
        key = f"{values_key}/{tile.z}/{tile.x}/{tile.y}"
        payload = value_payload(key, band, valid, scale=scale, offset=offset)
        counts = None
        if style.is_classes:
            found, n = np.unique(band[valid], return_counts=True)
            counts = {int(v): int(c) for v, c in zip(found, n, strict=True)}
        return WebTile(tile, png, payload, counts)

    # GDAL releases the GIL while reading and warping, so threads overlap tiles; map()
    # keeps the tile order, and each tile's bytes do not depend on the thread.
    workers = workers or min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for out in pool.map(_one, tiles_for(bounds_lonlat, zooms)):
            if out is not None:
                yield out


def _lonlat_bounds(path: str) -> tuple[float, float, float, float]:
    with rasterio.open(path) as src:
        return transform_bounds(src.crs, "EPSG:4326", *src.bounds, densify_pts=21)


def _scale_offset(path: str) -> tuple[float, float]:
    with rasterio.open(path) as src:
        return float(src.scales[0] or 1.0), float(src.offsets[0] or 0.0)
