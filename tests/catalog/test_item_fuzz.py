"""Hostile item JSON: the search and its time-step planning accept an item or drop it with a
reason, and never crash (property-based, hypothesis).

Each example writes a folder catalog of STAC items derived from one valid HLS S30 item,
with fields removed, retyped, made huge, NaN/Infinity, unicode or deeply nested, and runs
`search_tiles` over it - the same reader and planner a run uses. Properties:

1. `search_tiles` returns (no exception of any kind for a bad item);
2. every item in scope (wanted collection, valid in-range datetime, unique string id)
   comes out either in a tile's time steps or in `dropped` with a non-empty reason;
3. every drop carries a reason.

The ten inputs that crashed the search until hcatalog's fix are kept in `FORMER_CRASHES`
with their documented outcome (dropped `invalid_geometry` / `unparseable`, treated as
absent, or filtered as another collection); the random strategy generates their classes
too.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geoproc.catalog.search import search_tiles
from geoproc.grid import tiles_for_aoi

COLLECTION = "HLSS30_2.0"
TILE = tiles_for_aoi("11.95,47.45,12.05,47.55")[0]
WEST, SOUTH, EAST, NORTH = TILE.footprint_lonlat.bounds
START, END = "2024-01-01", "2024-12-31"

TEMPLATE = {
    "type": "Feature",
    "stac_version": "1.0.0",
    "id": "HLS.S30.T32TQT.2024153T101559.v2.0",
    "collection": COLLECTION,
    "bbox": [WEST, SOUTH, EAST, NORTH],
    "geometry": {
        "type": "Polygon",
        "coordinates": [
            [[WEST, SOUTH], [EAST, SOUTH], [EAST, NORTH], [WEST, NORTH], [WEST, SOUTH]]
        ],
    },
    "properties": {
        "datetime": "2024-06-01T10:15:59Z",
        "eo:cloud_cover": 12.0,
        "proj:epsg": 32632,
        "updated": "2024-06-03T00:00:00Z",
        "platform": "sentinel-2a",
    },
    "assets": {
        "B04": {"href": "/data/B04.tif", "type": "image/tiff; application=geotiff"},
        "Fmask": {"href": "/data/Fmask.tif", "type": "image/tiff; application=geotiff"},
    },
    "links": [],
}

# hostile scalars and structures (JSON allows every one of these once NaN/Infinity are allowed)
_huge = st.sampled_from([10**400, -(10**400), 1e308, -1e308, 2**63, 2**64 + 1])
_nonfinite = st.sampled_from([math.nan, math.inf, -math.inf])
_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), _huge, _text
)


def _nested(depth: int = 60):
    """A value nested `depth` levels deep (lists and objects alternating)."""
    value: object = "x"
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


_structure = st.one_of(
    st.lists(_scalar, max_size=4),
    st.dictionaries(_text, _scalar, max_size=4),
    st.integers(min_value=5, max_value=200).map(_nested),
)
_iso = st.builds(
    lambda y, m, d, off: f"{y:04d}-{m:02d}-{d:02d}T12:00:00{off}",
    st.sampled_from([1, 1970, 2024, 9999]),
    st.integers(1, 12),
    st.integers(1, 28),
    st.sampled_from(["Z", "+23:59", "-23:59", "+00:00", "", "+99:99"]),
)
_coord = st.one_of(st.floats(), _huge, st.just(WEST), st.just(SOUTH))
_geometry = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["Polygon", "Point", "MultiPolygon", "LineString", "polygon"]),
        "coordinates": st.recursive(
            st.lists(_coord, max_size=3), lambda c: st.lists(c, max_size=5), max_leaves=20
        ),
    }
)
HOSTILE = st.one_of(_scalar, _structure, _iso, _geometry)

# (path, hostile values): top-level and property fields a reader touches
FIELDS = [
    ("id",),
    ("collection",),
    ("type",),
    ("bbox",),
    ("geometry",),
    ("geometry", "type"),
    ("geometry", "coordinates"),
    ("properties",),
    ("properties", "datetime"),
    ("properties", "updated"),
    ("properties", "eo:cloud_cover"),
    ("properties", "proj:epsg"),
    ("properties", "proj:code"),
    ("properties", "start_datetime"),
    ("assets",),
    ("assets", "B04"),
    ("assets", "B04", "href"),
    ("assets", "Fmask", "raster:bands"),
    ("links",),
]

_RING = [[WEST, SOUTH], [EAST, SOUTH], [EAST, NORTH], [WEST, NORTH], [WEST, SOUTH]]
ACCEPTED = "accepted"
"""Outcome of an item whose hostile value is treated as absent (cloud cover, EPSG, updated)."""
FORMER_CRASHES: list[tuple[tuple[str, ...], object, str | None]] = [
    (("geometry", "type"), "", "invalid_geometry"),
    (("geometry", "type"), "Polygonal", "invalid_geometry"),
    (("geometry", "coordinates"), "", "invalid_geometry"),
    (
        ("geometry",),
        {"type": "Polygon", "coordinates": [[[math.nan, SOUTH], *_RING[1:4], [math.nan, SOUTH]]]},
        "invalid_geometry",
    ),
    (("collection",), ["HLSS30_2.0"], None),
    (("collection",), {"id": "HLSS30_2.0"}, None),
    (("properties", "datetime"), "9999-12-31T23:59:59-23:59", "unparseable"),
    (("properties", "datetime"), "0001-01-01T00:00:00+23:59", "unparseable"),
    (("properties", "updated"), "0001-01-01T00:00:00+23:59", ACCEPTED),
    (("properties", "eo:cloud_cover"), 10**400, ACCEPTED),
    (("properties", "proj:epsg"), math.inf, ACCEPTED),
]
"""(field path, value, documented outcome) of the inputs that crashed the search before
hcatalog's fix: a drop reason, `ACCEPTED` (the value is treated as absent), or None (an
unhashable collection is not a wanted one: neither accepted nor dropped, like items of other
collections)."""


def _set(item: dict, path: tuple[str, ...], value: object) -> dict:
    """The item with `path` set to `value` (or removed when value is `...`)."""
    item = copy.deepcopy(item)
    target = item
    for key in path[:-1]:
        if not isinstance(target.get(key), dict):
            return item
        target = target[key]
    if value is ...:
        target.pop(path[-1], None)
    else:
        target[path[-1]] = value
    return item


@st.composite
def hostile_items(draw) -> list[tuple[dict, tuple[tuple[str, ...], ...]]]:
    """A few items, each the template with 1-3 fields removed or replaced by hostile values."""
    items = []
    for n in range(draw(st.integers(min_value=1, max_value=4))):
        item = _set(TEMPLATE, ("id",), f"{TEMPLATE['id']}-{n}")
        changed = []
        for path in draw(st.lists(st.sampled_from(FIELDS), min_size=1, max_size=3, unique=True)):
            value = draw(st.one_of(st.just(...), HOSTILE, _nonfinite))
            item = _set(item, path, value)
            changed.append(path)
        items.append((item, tuple(changed)))
    return items


def _search(folder: Path, items: list[dict]):
    folder.mkdir(parents=True, exist_ok=True)
    for i, item in enumerate(items):
        # allow_nan: Python's json writes NaN/Infinity and reads them back, as hostile feeds do
        (folder / f"item-{i}.json").write_text(json.dumps(item, allow_nan=True))
    return search_tiles(str(folder), [TILE], collections=[COLLECTION], start=START, end=END)


def _in_scope(item: dict, changed: tuple[tuple[str, ...], ...]) -> bool:
    """Items the search must account for: untouched id, collection, properties and datetime."""
    untouched = {("id",), ("collection",), ("type",), ("properties",), ("properties", "datetime")}
    return not untouched & set(changed)


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=hostile_items())
def test_search_accepts_or_drops_every_item_with_a_reason(tmp_path_factory, batch):
    folder = tmp_path_factory.mktemp("cat")
    result = _search(folder, [item for item, _ in batch])
    accepted = {i.id for tile in result.tiles.values() for step in tile.steps for i in step.items}
    dropped = [d for d in result.dropped]
    assert all(isinstance(d, dict) and d.get("reason") for d in dropped), dropped
    dropped_ids = [d.get("id") for d in dropped]  # ids may be anything, even unhashable
    for item, changed in batch:
        if _in_scope(item, changed):
            assert item["id"] in accepted or item["id"] in dropped_ids, (changed, item)


def test_the_untouched_template_is_accepted(tmp_path):
    result = _search(tmp_path / "cat", [TEMPLATE])
    steps = result.tiles[TILE.id].steps
    assert [i.id for s in steps for i in s.items] == [TEMPLATE["id"]] and result.dropped == []


@pytest.mark.parametrize("path, value, outcome", FORMER_CRASHES)
def test_former_crashes_have_their_documented_outcome(tmp_path, path, value, outcome):
    result = _search(tmp_path / "cat", [_set(TEMPLATE, path, value)])
    accepted = [i for tile in result.tiles.values() for step in tile.steps for i in step.items]
    reasons = [d["reason"] for d in result.dropped]
    if outcome is None:
        assert accepted == [] and reasons == []
    elif outcome == ACCEPTED:
        assert [i.id for i in accepted] == [TEMPLATE["id"]] and reasons == []
    else:
        assert accepted == [] and reasons == [outcome]
        assert result.dropped[0]["id"] == TEMPLATE["id"] and result.dropped[0].get("detail")


def test_absent_values_stay_absent(tmp_path):
    """A huge cloud cover is not compared against the limit, an out-of-range `updated` is no
    version and an infinite EPSG code is no projection (the template's are all valid)."""
    item = _set(TEMPLATE, ("properties", "eo:cloud_cover"), 10**400)
    item = _set(item, ("properties", "updated"), "0001-01-01T00:00:00+23:59")
    item = _set(item, ("properties", "proj:epsg"), math.inf)
    result = _search(tmp_path / "cat", [item])
    (accepted,) = [i for t in result.tiles.values() for s in t.steps for i in s.items]
    assert accepted.id == TEMPLATE["id"] and accepted.updated is None and result.dropped == []
