"""A real search over a folder of items: every dropped item names the tiles it covered."""

from __future__ import annotations

import json

from affine import Affine

from geoproc import run_report
from geoproc.catalog.search import search_tiles
from geoproc.grid import Tile
from tests.helpers.cube_items import TILE, make_item

NEIGHBOUR = Tile(32, False, 261, 2740, tile_size_px=64, resolution=30.0)


def test_dropped_items_carry_their_tiles_and_the_counts_add_up(tmp_path):
    folder = tmp_path / "catalog"
    folder.mkdir()
    x0, _, _, y1 = TILE.bounds
    far = Affine(30.0, 0, x0 + 200_000.0, 0, -30.0, y1)  # 200 km east: no tile of the run
    items = [
        make_item(tmp_path, "clear", cloud_cover=5.0),
        make_item(tmp_path, "cloudy-1", cloud_cover=95.0),
        make_item(
            tmp_path, "cloudy-2", cloud_cover=90.0, datetime="2024-06-02T10:20:30Z", shape=(40, 40)
        ),  # 1.2 km wide from 300 m west of TILE: TILE only
        make_item(tmp_path, "far", cloud_cover=5.0, transform=far),
    ]
    for item in items:
        (folder / f"{item['id']}.json").write_text(json.dumps(item))
    found = search_tiles(folder, [TILE, NEIGHBOUR], collections=["HLSL30_2.0"],
                         start="2024-06-01", end="2024-06-02", max_cloud_cover=80.0)  # fmt: skip
    inputs = run_report.inputs_summary(found)
    assert inputs["found"] == 4 and inputs["found_per_collection"] == {"HLSL30_2.0": 4}
    assert inputs["used_per_collection"] == {"HLSL30_2.0": 1}
    assert inputs["dropped_per_reason"] == {"cloud_cover": 2, "outside_tile": 1}
    by_id = {d["id"]: d["tiles"] for d in inputs["dropped"]}
    # 80 px of 30 m from 300 m west of TILE (1.92 km wide) reach into its east neighbour
    assert by_id == {"cloudy-1": [TILE.id, NEIGHBOUR.id], "cloudy-2": [TILE.id], "far": []}
    assert inputs["dropped_groups"] == [
        {
            "collection": "HLSL30_2.0",
            "reason": "cloud_cover",
            "count": 2,
            "tiles": {TILE.id: 2, NEIGHBOUR.id: 1},
        },
        {
            "collection": "HLSL30_2.0",
            "reason": "outside_tile",
            "count": 1,
            "tiles": {run_report.OUTSIDE_TILES: 1},
        },
    ]
    assert sum(g["count"] for g in inputs["dropped_groups"]) == len(inputs["dropped"])
