"""Web tiles: seamless across the UTM 32/33 boundary, right colours, bounded zooms."""

from __future__ import annotations

import base64
import json
import math
import zlib
from pathlib import Path

import morecantile
import numpy as np
import pytest
import rasterio
from pyproj import Transformer

from geoproc.publish.colormaps import FLOOD_COLOR, STYLES
from geoproc.publish.web_tiles import CONTEXT_ZOOMS, MIN_AOI_PX, TMS, render_tile, zoom_range
from tests.helpers.published_stores import (
    BOUNDARY_LON,
    DATES,
    TILES,
    lst_of,
    shared_published,
)

ZOOM = 12


@pytest.fixture(scope="module")
def published() -> Path:
    return shared_published()


def _read_png(path_or_bytes) -> np.ndarray:
    if isinstance(path_or_bytes, bytes):
        with rasterio.MemoryFile(path_or_bytes) as mem, mem.open() as src:
            return src.read()
    with rasterio.open(path_or_bytes) as src:
        return src.read()


def _pixel_lonlat(tile: morecantile.Tile, row: int, col: int) -> tuple[float, float]:
    b = TMS.xy_bounds(tile)
    x = b.left + (col + 0.5) * (b.right - b.left) / 256
    y = b.top - (row + 0.5) * (b.top - b.bottom) / 256
    lon, lat = Transformer.from_crs(3857, 4326, always_xy=True).transform(x, y)
    return lon, lat


def _boundary_column(tile: morecantile.Tile) -> int:
    b = TMS.bounds(tile)
    return int((BOUNDARY_LON - b.left) / (b.right - b.left) * 256)


def _ramp_index(rgb: np.ndarray) -> np.ndarray:
    lut = STYLES["lst"].ramp_lut()
    colors = np.array([lut[i][:3] for i in range(256)], dtype=float)
    d = ((rgb[:, None, :].astype(float) - colors[None]) ** 2).sum(-1)
    return d.argmin(axis=1)


def _boundary_tiles() -> list[morecantile.Tile]:
    """z12 tiles on the 12 E meridian inside the data's latitudes."""
    return [t for t in TMS.tiles(12.0, 47.47, 12.0001, 47.53, [ZOOM])]


def test_zone_boundary_has_no_gap_and_no_seam(published):
    tiles = _boundary_tiles()
    assert tiles, "the AOI must straddle 12 E"
    checked = 0
    for tile in tiles:
        png = published / "tiles" / "lst" / DATES[0] / str(tile.z) / str(tile.x) / f"{tile.y}.png"
        img = _read_png(png)
        col = _boundary_column(tile)
        for row in range(256):
            lon, lat = _pixel_lonlat(tile, row, col)
            if not 47.465 < lat < 47.535:
                continue
            band = img[:, row, col - 4 : col + 5]
            assert (band[3] == 255).all(), f"transparent gap at row {row} of {tile}"
            idx = _ramp_index(band[:3].T)
            # values continue smoothly across the meridian: no jump between zones
            assert np.abs(np.diff(idx)).max() <= 1
            expected = STYLES["lst"].to_ramp_index(lst_of(np.array(lon), np.array(lat), 0))
            assert abs(int(idx[4]) - int(expected)) <= 1
            checked += 1
    assert checked > 100


def test_one_source_alone_would_leave_a_gap(published):
    """Negative control: the test above fails if a tile is rendered from one zone only."""
    tile = _boundary_tiles()[0]
    west_only = [str(published / "cog" / "lst" / sorted(TILES)[0] / DATES[0] / "lst.tif")]
    img = _read_png(render_tile(west_only, tile, style=STYLES["lst"]))
    col = _boundary_column(tile)
    b = TMS.bounds(tile)
    east_col = col + int(0.01 / (b.right - b.left) * 256)  # 0.01 deg east of 12 E
    rows = [r for r in range(256) if 47.47 < _pixel_lonlat(tile, r, col)[1] < 47.53]
    assert (img[3, rows, col - 10] == 255).all()
    assert (img[3, rows, east_col] == 0).all()


def test_flood_classes_are_drawn_in_their_colours_and_nodata_is_transparent(published):
    date = DATES[0]
    to_merc = Transformer.from_crs(4326, 3857, always_xy=True)
    # a pixel inside the flood band (47.47..47.48 N) west of the boundary
    lon, lat = 11.98, 47.475
    tile = TMS.tile(lon, lat, ZOOM)
    img = _read_png(
        published / "tiles" / "flood" / date / str(ZOOM) / str(tile.x) / f"{tile.y}.png"
    )
    b = TMS.xy_bounds(tile)
    x, y = to_merc.transform(lon, lat)
    col = int((x - b.left) / (b.right - b.left) * 256)
    row = int((b.top - y) / (b.top - b.bottom) * 256)
    assert tuple(img[:, row, col]) == FLOOD_COLOR
    # the cloud hole (store rows/cols 10..19 of the 32N tile) is transparent, not dry
    epsg, left, top = TILES[sorted(TILES)[0]]
    hx, hy = left + 15 * 30.0, top - 15 * 30.0
    lon, lat = Transformer.from_crs(epsg, 4326, always_xy=True).transform(hx, hy)
    tile = TMS.tile(lon, lat, ZOOM)
    img = _read_png(
        published / "tiles" / "flood" / date / str(ZOOM) / str(tile.x) / f"{tile.y}.png"
    )
    b = TMS.xy_bounds(tile)
    x, y = to_merc.transform(lon, lat)
    col = int((x - b.left) / (b.right - b.left) * 256)
    row = int((b.top - y) / (b.top - b.bottom) * 256)
    assert img[3, row, col] == 0
    assert img[3, row + 30, col + 30] == 255  # outside the hole there is data


def test_zoom_levels_are_bounded():
    bounds = (11.92, 47.46, 12.07, 47.55)
    z30 = zoom_range(bounds, resolution_m=30.0)
    # the deepest zoom has the web pixel closest to 30 m on the ground
    ground = TMS.matrix(z30.maxzoom).cellSize * math.cos(math.radians(47.5))
    coarser = TMS.matrix(z30.maxzoom - 1).cellSize * math.cos(math.radians(47.5))
    finer = TMS.matrix(z30.maxzoom + 1).cellSize * math.cos(math.radians(47.5))
    assert abs(ground - 30) < abs(coarser - 30) and abs(ground - 30) < abs(finer - 30)
    assert z30.maxzoom == 12
    assert zoom_range(bounds, resolution_m=10.0).maxzoom in (z30.maxzoom + 1, z30.maxzoom + 2)
    # minzoom: a small AOI still gets CONTEXT_ZOOMS zooms out (8..12), at one tile each
    assert z30.minzoom == z30.maxzoom - CONTEXT_ZOOMS == 8
    assert len(list(TMS.tiles(*bounds, [z30.minzoom]))) == 1
    # a 3 km AOI stops zooming out where it would be smaller than MIN_AOI_PX on screen
    tiny = (11.984, 47.501, 12.026, 47.524)
    small = zoom_range(tiny, resolution_m=30.0)
    assert (small.minzoom, small.maxzoom) == (10, 12)
    assert 0.042 / 360 * 256 * 2**10 >= MIN_AOI_PX > 0.042 / 360 * 256 * 2**9
    # a big AOI starts at the deepest zoom where it fits in at most 4 tiles
    big_bounds = (5.0, 45.0, 15.0, 50.0)
    big = zoom_range(big_bounds, resolution_m=30.0)
    assert big.maxzoom == 12 and big.minzoom < z30.minzoom
    assert len(list(TMS.tiles(*big_bounds, [big.minzoom]))) <= 4
    assert len(list(TMS.tiles(*big_bounds, [big.minzoom + 1]))) > 4


def test_published_pyramid_covers_every_zoom_and_only_data(published):
    for product in ("flood", "lst"):
        for date in DATES:
            root = published / "tiles" / product / date
            zooms = sorted(int(p.name) for p in root.iterdir())
            assert zooms == list(range(8, 13))
            for png in root.rglob("*.png"):
                assert _read_png(png)[3].any(), f"empty tile written: {png}"
            # every deepest-zoom tile has its value payload, and only those
            payloads = sorted(p.with_suffix("") for p in root.rglob("*.js"))
            assert payloads == sorted(p.with_suffix("") for p in (root / "12").rglob("*.png"))


def test_packed_values_are_coloured_in_physical_units(tmp_path):
    """An int16 LST with scale 0.01 / offset 150 is drawn at its kelvin, not its counts."""
    from rasterio.crs import CRS

    from geoproc.publish.cog import cog_bytes
    from geoproc.publish.web_tiles import iter_tiles

    kelvin = 300.0
    packed = np.full((300, 300), round((kelvin - 150.0) / 0.01), dtype="int16")
    packed[:20] = -32768
    attrs = {"scale_factor": 0.01, "add_offset": 150.0, "_FillValue": -32768, "units": "K"}
    path = tmp_path / "lst.tif"
    path.write_bytes(
        cog_bytes(
            packed,
            crs=CRS.from_epsg(32633),
            transform=rasterio.Affine(30, 0, 270000, 0, -30, 5270000),
            name="lst",
            attrs=attrs,
        )
    )
    style = STYLES["lst"]
    expected = style.ramp_lut()[int(style.to_ramp_index(np.array(kelvin)))]
    zooms = zoom_range((11.96, 47.46, 12.1, 47.54), resolution_m=30.0)
    seen = 0
    for out in iter_tiles([str(path)], (11.96, 47.46, 12.1, 47.54), style=style, zooms=zooms):
        img = _read_png(out.png)
        opaque = img[:, img[3] == 255]
        assert (np.abs(opaque[:3].astype(int) - np.array(expected[:3])[:, None]) <= 1).all()
        seen += opaque.shape[1]
    assert seen > 1000


def _decode_payload(path: Path) -> tuple[str, dict, np.ndarray]:
    text = path.read_text()
    assert text.startswith("geoprocValues(") and text.endswith(");\n")
    key, _, body = text[len("geoprocValues(") : -3].partition(",")
    meta = json.loads(body)
    raw = zlib.decompress(base64.b64decode(meta["data"]))
    values = np.frombuffer(raw, dtype=np.dtype(meta["dtype"]).newbyteorder("<"))
    return json.loads(key), meta, values.reshape(meta["size"], meta["size"])


@pytest.mark.parametrize(("product", "variable"), [("flood", "water"), ("lst", "lst")])
def test_value_payloads_hold_the_stored_value_under_each_web_pixel(published, product, variable):
    """Each payload pixel is the COG value at the web pixel's centre, never interpolated."""
    date = DATES[1]
    west = sorted(TILES)[0]
    cog = published / "cog" / product / west / date / f"{variable}.tif"
    checked = 0
    with rasterio.open(cog) as src:
        to_cog = Transformer.from_crs(4326, src.crs, always_xy=True)
        band = src.read(1, masked=True)
        for path in sorted((published / "tiles" / product / date / "12").rglob("*.js")):
            x, y = int(path.parent.name), int(path.stem)
            key, meta, values = _decode_payload(path)
            assert key == f"{product}/{date}/12/{x}/{y}"
            tile = morecantile.Tile(x, y, 12)
            for row in range(3, 256, 17):
                for col in range(3, 256, 17):
                    lon, lat = _pixel_lonlat(tile, row, col)
                    if lon > BOUNDARY_LON - 0.01:
                        continue  # the overlap may come from either zone's COG
                    r, c = src.index(*to_cog.transform(lon, lat))
                    if not (0 <= r < src.height and 0 <= c < src.width):
                        continue
                    got = values[row, col]
                    if np.ma.is_masked(band[r, c]):
                        assert got == meta["nodata"] or (meta["nodata"] is None and np.isnan(got))
                    else:
                        assert got == band[r, c], (path, row, col)
                        checked += 1
    assert checked > 200
