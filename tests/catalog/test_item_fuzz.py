"""Hostile item JSON: the search and its time-step planning accept an item or drop it with a
reason, and never crash (property-based, hypothesis).

Each example writes a folder catalog of STAC items derived from one valid HLS S30 item,
with fields removed, retyped, made huge, NaN/Infinity, unicode or deeply nested, and runs
`search_tiles` over it - the same reader and planner a run uses. Properties:

1. `search_tiles` returns (no exception of any kind for a bad item);
2. every item in scope (wanted collection, valid in-range datetime, unique string id)
   comes out either in a tile's time steps or in `dropped` with a non-empty reason;
3. every drop carries a reason.

Inputs that crash today are listed in `KNOWN_CRASHES`, checked one by one as strict xfails
(so a fix shows up as XPASS and the entry must be removed); the random strategy leaves
them out so that the property keeps guarding everything else.
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

_SHAPE = "geoproc/catalog/search.py search_tiles: shape(item.geometry) raises"
_TIME = "geoproc/catalog/items.py _parse_time: astimezone(UTC) raises OverflowError (not caught)"
_RING = [[WEST, SOUTH], [EAST, SOUTH], [EAST, NORTH], [WEST, NORTH], [WEST, SOUTH]]
KNOWN_CRASHES: list[tuple[tuple[str, ...], object, str]] = [
    (("geometry", "type"), "", f"{_SHAPE} shapely GeometryTypeError (not caught)"),
    (("geometry", "type"), "Polygonal", f"{_SHAPE} shapely GeometryTypeError (not caught)"),
    (("geometry", "coordinates"), "", f"{_SHAPE} IndexError (not caught)"),
    (
        ("geometry",),
        {"type": "Polygon", "coordinates": [[[math.nan, SOUTH], *_RING[1:4], [math.nan, SOUTH]]]},
        f"{_SHAPE} GEOSException for a NaN vertex (not caught)",
    ),
    (
        ("collection",),
        ["HLSS30_2.0"],
        "geoproc/catalog/source.py iter_catalog_items: `doc.get('collection') not in wanted` "
        "raises TypeError (unhashable) for a list or object collection",
    ),
    (("properties", "datetime"), "9999-12-31T23:59:59-23:59", _TIME),
    (("properties", "datetime"), "0001-01-01T00:00:00+23:59", _TIME),
    (("properties", "updated"), "0001-01-01T00:00:00+23:59", _TIME),
    (
        ("properties", "eo:cloud_cover"),
        10**400,
        "geoproc/catalog/search.py search_tiles: float(cover) raises OverflowError (not caught)",
    ),
    (
        ("properties", "proj:epsg"),
        math.inf,
        "geoproc/catalog/search.py _item_epsg: int(inf) raises OverflowError (not caught)",
    ),
]
"""(field path, value, what goes wrong) of inputs that crash the search today (see module doc)."""


def _non_finite(value: object) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_non_finite(v) for v in value.values())
    if isinstance(value, list):
        return any(_non_finite(v) for v in value)
    return False


def _known(path: tuple[str, ...], value: object) -> bool:
    """Whether `value` at `path` falls in one of the crash classes of `KNOWN_CRASHES`."""
    if path == ("geometry", "type"):
        return isinstance(value, str)
    if path == ("geometry", "coordinates"):
        return value == "" or _non_finite(value)
    if path == ("geometry",):
        return isinstance(value, dict) and (
            isinstance(value.get("type"), str) or _non_finite(value)
        )
    if path == ("collection",):
        return isinstance(value, list | dict)
    if path in (
        ("properties", "datetime"),
        ("properties", "updated"),
        ("properties", "start_datetime"),
    ):
        return isinstance(value, str) and value[:4] in ("0001", "9999")
    if path == ("properties", "eo:cloud_cover"):
        return isinstance(value, int) and abs(value) > 1e308
    if path == ("properties", "proj:epsg"):
        return isinstance(value, float) and math.isinf(value)
    return False


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
            if _known(path, value):
                continue
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


@pytest.mark.parametrize(
    "path, value, what",
    [
        pytest.param(p, v, w, marks=pytest.mark.xfail(strict=True, reason=w))
        for p, v, w in KNOWN_CRASHES
    ]
    or [pytest.param(("id",), "x", "", marks=pytest.mark.skip(reason="no known crash left"))],
)
def test_known_crashes(tmp_path, path, value, what):
    result = _search(tmp_path / "cat", [_set(TEMPLATE, path, value)])
    assert all(d.get("reason") for d in result.dropped)
