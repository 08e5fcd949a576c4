"""Search: drops are recorded with a reason, same-solar-day granules merge in a fixed order."""

from __future__ import annotations

import json

import numpy as np

from geoproc.catalog.search import search_tiles
from geoproc.dev.stac_server import serve_files
from tests.helpers.cube_items import TILE, make_item


def _catalog(root):
    make_item(root, "L30_a", datetime="2024-06-01T10:20:00Z", cloud_cover=30.0, shape=(20, 20))
    make_item(root, "L30_b", datetime="2024-06-01T10:25:00Z", cloud_cover=5.0, shape=(20, 20))
    make_item(root, "L30_cloudy", datetime="2024-06-03T10:20:00Z", cloud_cover=95.0, shape=(20, 20))
    make_item(
        root, "S30_a", collection="HLSS30_2.0", datetime="2024-06-01T10:30:00Z", shape=(20, 20)
    )
    far = make_item(
        root, "L30_far", datetime="2024-06-05T10:20:00Z", shape=(20, 20), crs="EPSG:32633"
    )
    # the same granule listed twice (e.g. two pages or two files): kept once
    (root / "items" / "L30_a_copy.json").write_text((root / "items" / "L30_a.json").read_text())
    return far


def test_drops_and_grouping_local(tmp_path):
    _catalog(tmp_path)
    res = search_tiles(
        tmp_path / "items",
        [TILE],
        collections=["HLSL30_2.0", "HLSS30_2.0"],
        start="2024-05-01",
        end="2024-06-30",
        max_cloud_cover=80,
    )
    reasons = sorted((d["id"], d["reason"]) for d in res.dropped)
    assert reasons == [
        ("L30_a", "duplicate"),
        ("L30_cloudy", "cloud_cover"),
        ("L30_far", "outside_tile"),
    ]
    steps = res.tiles[TILE.id].steps
    assert [(s.platform, s.item_ids) for s in steps] == [
        ("L30", ["L30_b", "L30_a"]),
        ("S30", ["S30_a"]),
    ]
    assert steps[0].time == np.datetime64("2024-06-01T10:20:00")
    assert res.found == 6


def test_search_through_stac_api_pages(tmp_path):
    _catalog(tmp_path)
    feats = [
        json.loads(p.read_text())
        for p in sorted((tmp_path / "items").glob("L30_[abc]*.json"))
        if "copy" not in p.name
    ]
    fc = tmp_path / "fc.json"
    fc.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    with serve_files([fc]) as url:
        res = search_tiles(
            url,
            [TILE],
            collections=["HLSL30_2.0"],
            start="2024-05-01",
            end="2024-06-30",
            page_size=1,
        )
    assert res.found == 3
    assert [d["reason"] for d in res.dropped] == ["cloud_cover"]
    assert res.tiles[TILE.id].steps[0].item_ids == ["L30_b", "L30_a"]


def test_granules_in_the_tile_crs_come_first_then_clearest():
    from geoproc.catalog.search import group_time_steps
    from geoproc.catalog.sensors import profile_for
    from geoproc.grid import parse_tile_id

    tile = parse_tile_id("32N_0188_1371", tile_size_px=128, resolution=30.0)
    props = {"datetime": "2024-06-01T10:00:00Z"}
    items = [
        {"id": "z33-clear", "properties": {**props, "eo:cloud_cover": 1.0, "proj:epsg": 32633}},
        {"id": "z32-cloudy", "properties": {**props, "eo:cloud_cover": 60.0, "proj:epsg": 32632}},
        {
            "id": "z32-v2",
            "properties": {**props, "eo:cloud_cover": 70.0, "proj:code": "EPSG:32632"},
        },
        {"id": "bad-code", "properties": {**props, "eo:cloud_cover": 0.0, "proj:code": "EPSG:x"}},
    ]
    profile = profile_for("HLSL30_2.0")
    (step,) = group_time_steps([(i, profile) for i in items], tile)
    assert [i["id"] for i in step.items] == ["z32-cloudy", "z32-v2", "bad-code", "z33-clear"]
