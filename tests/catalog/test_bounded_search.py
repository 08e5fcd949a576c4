"""Bounded search (#18.1) and honest provenance (#18.5) against a loopback STAC API.

The server's ``next`` link never ends (or loops); a search must stop at its limit with an
error naming the catalog and the setting, with memory flat while paging.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import tracemalloc
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest

from geoproc.catalog.source import (
    SearchLimitError,
    SearchLimits,
    classify_catalog,
    iter_catalog_items,
)
from geoproc.errors import UsageError
from tests.helpers.cube_items import TILE, make_item
from tests.helpers.servers import http_server


def _feature(i: int) -> dict:
    return {
        "type": "Feature", "stac_version": "1.0.0", "id": f"item-{i}", "collection": "HLSL30_2.0",
        "geometry": {"type": "Point", "coordinates": [0.0, 0.0]}, "bbox": [0, 0, 0, 0],
        "properties": {"datetime": "2024-06-01T10:00:00Z", "eo:cloud_cover": 1},
        "assets": {"B04": {"href": f"https://example.org/{i}/B04.tif"}}, "links": [],
    }  # fmt: skip


@contextlib.contextmanager
def endless_api(mode: str = "endless", per_page: int = 10):
    """A STAC API whose search pages never end (`endless`), repeat a next token (`loop`) or
    repeat the same page under new tokens (`same_page`)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _json(self, doc):
            body = json.dumps(doc).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/geo+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            parsed = urlparse(self.path)
            base = f"http://{self.headers['Host']}"
            if parsed.path in ("", "/"):
                return self._json({
                    "type": "Catalog", "id": "endless", "description": "x", "stac_version": "1.0.0",
                    "conformsTo": ["https://api.stacspec.org/v1.0.0/core",
                                   "https://api.stacspec.org/v1.0.0/item-search"],
                    "links": [{"rel": "search", "href": f"{base}/search", "method": "GET",
                               "type": "application/geo+json"},
                              {"rel": "self", "href": f"{base}/"}],
                })  # fmt: skip
            page = int(parse_qs(parsed.query).get("page", ["0"])[0])
            first = 0 if mode == "same_page" else page * per_page
            nxt = 1 if mode == "loop" else page + 1
            return self._json({
                "type": "FeatureCollection",
                "features": [_feature(first + k) for k in range(per_page)],
                "links": [{"rel": "next", "href": f"{base}/search?page={nxt}", "method": "GET"}],
            })  # fmt: skip

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.path = "/search?page=0"
            self.do_GET()

    with http_server(Handler) as url:
        yield url


def _drain(url, limits):
    n = 0
    for _ in iter_catalog_items(url, collections=["HLSL30_2.0"], limits=limits):
        n += 1
    return n


def test_a_never_ending_next_link_stops_at_the_page_limit_naming_catalog_and_setting():
    with endless_api() as url:
        with pytest.raises(SearchLimitError) as err:
            _drain(url, SearchLimits(max_pages=30))
    message = str(err.value)
    assert url in message and "GEOPROC_SEARCH_MAX_PAGES=30" in message and "30 pages" in message


def test_the_item_limit_stops_a_search_at_exactly_that_many_items():
    seen = []
    with endless_api() as url, pytest.raises(SearchLimitError, match="GEOPROC_SEARCH_MAX_ITEMS=95"):
        for item in iter_catalog_items(
            url, collections=["HLSL30_2.0"], limits=SearchLimits(max_items=95)
        ):
            seen.append(item.id)
    assert len(seen) == 95


def test_the_wall_time_limit_stops_a_slow_search():
    with endless_api() as url, pytest.raises(SearchLimitError, match="GEOPROC_SEARCH_MAX_SECONDS"):
        _drain(url, SearchLimits(max_seconds=0.5))


@pytest.mark.parametrize(
    ("mode", "words"), [("loop", "'next' link"), ("same_page", "earlier page")]
)
def test_a_looping_catalog_is_detected_at_once(mode, words):
    with endless_api(mode) as url, pytest.raises(SearchLimitError, match=words) as err:
        _drain(url, SearchLimits())
    assert url in str(err.value) and "page 2 repeats" in str(err.value)


def test_memory_stays_flat_while_paging():
    """Peak traced memory over 200 pages (2,000 items) exceeds that over 20 by < 512 KiB:
    pages are consumed, never kept (keeping the 1,800 extra items would add ~2 MiB)."""

    def peak(pages: int) -> int:
        with endless_api() as url:
            tracemalloc.start()
            with pytest.raises(SearchLimitError):
                _drain(url, SearchLimits(max_pages=pages))
            _, top = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        return top

    peak(3)  # imports and first-use caches
    small, large = peak(20), peak(200)
    assert large - small < 512 * 1024, (small, large)


def test_search_tiles_reports_the_limit_through_the_same_error():
    from geoproc.catalog.search import search_tiles

    with endless_api() as url, pytest.raises(SearchLimitError, match="GEOPROC_SEARCH_MAX_PAGES=5"):
        search_tiles(url, [TILE], collections=["HLSL30_2.0"], start="2024-01-01", end="2024-12-31",
                     limits=SearchLimits(max_pages=5))  # fmt: skip


def test_catalog_kinds_are_classified_the_same_for_every_command(tmp_path):
    (tmp_path / "items").mkdir()
    (tmp_path / "catalog.json").write_text("{}")
    assert classify_catalog("https://earth-search.aws.element84.com/v1/").kind == "api"
    assert classify_catalog("https://example.org/static/catalog.json").kind == "static"
    assert classify_catalog("s3://bucket/stac/catalog.json").kind == "static"
    assert classify_catalog(tmp_path / "catalog.json").kind == "static"
    assert classify_catalog(tmp_path / "items").kind == "folder"
    with pytest.raises(UsageError, match="--catalog") as err:
        classify_catalog(tmp_path / "missing")
    assert err.value.exit_code == 2
    with pytest.raises(UsageError, match="catalog.json"):
        classify_catalog("s3://bucket/stac/")


def test_static_catalog_json_is_walked_like_an_api(tmp_path):
    """A pystac-written static catalog (catalog -> collection -> items) gives the same steps."""
    import pystac

    from geoproc.catalog.search import search_tiles

    items = [make_item(tmp_path / "src", f"s{i}", datetime=f"2024-06-0{i + 1}T10:20:30Z")
             for i in range(3)]  # fmt: skip
    catalog = pystac.Catalog("root", "test")
    collection = pystac.Collection(
        "HLSL30_2.0", "x", pystac.Extent(pystac.SpatialExtent([[-180, -90, 180, 90]]),
                                         pystac.TemporalExtent([[None, None]])),
    )  # fmt: skip
    catalog.add_child(collection)
    for doc in items:
        collection.add_item(pystac.Item.from_dict(doc))
    catalog.normalize_hrefs(str(tmp_path / "static"))
    catalog.save(pystac.CatalogType.SELF_CONTAINED)
    found = search_tiles(tmp_path / "static" / "catalog.json", [TILE], collections=["HLSL30_2.0"],
                         start="2024-06-01", end="2024-06-02")  # fmt: skip
    steps = found.tiles[TILE.id].steps
    assert [s.item_ids for s in steps] == [["s0"], ["s1"]] and found.found == 3
    assert steps[0].items[0]["assets"]["B04"]["href"] == items[0]["assets"]["B04"]["href"]


def test_same_id_different_content_keeps_the_newest_updated_and_stores_its_pixels(tmp_path):
    """#18.5: the impostor read first no longer wins; the genuine (newer) item's pixels are read."""
    from geoproc.catalog.search import search_tiles
    from geoproc.cube.assemble import CubeOptions, read_step

    shape = (80, 80)
    clear = np.zeros(shape, np.uint8)
    old = make_item(tmp_path / "a", "scene", bands={"B04": np.full(shape, 1111, np.int16)},
                    fmask=clear, properties={"updated": "2024-06-02T00:00:00Z"})  # fmt: skip
    new = make_item(tmp_path / "b", "scene", bands={"B04": np.full(shape, 2222, np.int16)},
                    fmask=clear, properties={"updated": "2024-09-01T00:00:00Z"})  # fmt: skip
    folder = tmp_path / "catalog"
    folder.mkdir()
    (folder / "0-first.json").write_text(json.dumps(old))  # read first
    (folder / "1-second.json").write_text(json.dumps(new))
    found = search_tiles(folder, [TILE], collections=["HLSL30_2.0"], start="2024-06-01",
                         end="2024-06-01")  # fmt: skip
    (step,) = found.tiles[TILE.id].steps
    assert step.items[0].source.endswith("1-second.json")
    assert [d["reason"] for d in found.dropped] == ["duplicate"]
    assert found.dropped[0]["source"].endswith("0-first.json")
    data = read_step(step, TILE, ["red"], CubeOptions())
    assert np.allclose(data.bands["red"], 0.2222)
    # neither newer: both refused, both sources named, nothing of that id is read
    new["properties"]["updated"] = old["properties"]["updated"]
    (folder / "1-second.json").write_text(json.dumps(new))
    found = search_tiles(folder, [TILE], collections=["HLSL30_2.0"], start="2024-06-01",
                         end="2024-06-01")  # fmt: skip
    assert found.tiles[TILE.id].steps == []
    drops = [d for d in found.dropped if d["reason"] == "conflicting_duplicate"]
    assert (
        len(drops) == 2
        and "0-first.json" in drops[0]["detail"]
        and "1-second.json" in drops[0]["detail"]
    )
