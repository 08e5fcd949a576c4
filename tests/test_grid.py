"""Grid contract: tile ids, exact extents, zone splitting, readable errors."""

from __future__ import annotations

import json

import pytest
from pyproj import Transformer

from geoproc.errors import InvalidAOIError
from geoproc.grid import parse_tile_id, tiles_for_aoi, utm_zone


def test_tile_id_round_trip_and_extent():
    t = parse_tile_id("32N_0023_0174", tile_size_px=1024, resolution=30.0)
    assert (t.zone, t.south, t.col, t.row, t.epsg) == (32, False, 23, 174, 32632)
    assert t.bounds == (23 * 30720.0, 174 * 30720.0, 24 * 30720.0, 175 * 30720.0)
    assert t.id == "32N_0023_0174"
    assert t.x_coords[0] == 23 * 30720.0 + 15.0 and t.y_coords[0] == 175 * 30720.0 - 15.0
    assert tuple(t.transform)[:6] == (30.0, 0.0, 706560.0, 0.0, -30.0, 5376000.0)


def test_bbox_tiles_cover_the_aoi_and_edges_are_on_the_grid():
    tiles = tiles_for_aoi("11.7,47.4,11.9,47.6", tile_size_px=256, resolution=30.0)
    side = 256 * 30.0
    assert {t.epsg for t in tiles} == {32632}
    for t in tiles:
        assert t.bounds[0] % side == 0 and t.bounds[1] % side == 0
    to_utm = Transformer.from_crs(4326, 32632, always_xy=True)
    for lon, lat in [(11.7, 47.4), (11.9, 47.6), (11.8, 47.5)]:
        x, y = to_utm.transform(lon, lat)
        hits = [
            t for t in tiles if t.bounds[0] <= x < t.bounds[2] and t.bounds[1] <= y < t.bounds[3]
        ]
        assert len(hits) == 1


def test_aoi_across_zones_gives_tiles_in_each_zone_without_reprojection(tmp_path):
    aoi = tmp_path / "aoi.geojson"
    aoi.write_text(json.dumps({"type": "Feature", "properties": {}, "geometry": {
        "type": "Polygon", "coordinates": [[[11.95, 47.4], [12.05, 47.4], [12.05, 47.5], [11.95, 47.5], [11.95, 47.4]]]}}))  # fmt: skip
    tiles = tiles_for_aoi(str(aoi), tile_size_px=1024)
    zones = {t.zone for t in tiles}
    assert zones == {32, 33}
    assert utm_zone(11.99) == 32 and utm_zone(12.0) == 33


def test_southern_hemisphere_uses_327xx():
    tiles = tiles_for_aoi("-47.0,-15.1,-46.9,-15.0")
    assert {t.epsg for t in tiles} == {32723}
    assert all(t.id[2] == "S" for t in tiles)


@pytest.mark.parametrize(
    "aoi", ["12,47,11,48", "a,b,c,d", "99N_0001_0001", "/nope/aoi.geojson", "12,47,12.1,95"]
)
def test_bad_aoi_names_what_to_change(aoi):
    with pytest.raises(InvalidAOIError) as err:
        tiles_for_aoi(aoi)
    assert "--aoi" in str(err.value) or "tile id" in str(err.value)
