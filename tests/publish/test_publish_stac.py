"""STAC catalog of the outputs: schema-valid offline, checksums true, Zarr asset opens."""

from __future__ import annotations

import contextlib
import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
import xarray as xr

from geoproc.dev.stac_server import serve_files
from geoproc.publish.publisher import publish_run
from geoproc.stac_schemas import schema_root, validate_stac
from tests.helpers.published_stores import (
    DATES,
    SHARED_RUN_ID,
    TILES,
    shared_published,
    write_product_stores,
)
from tests.helpers.servers import http_server

SOURCE_ID = "HLS.S30.T32TQT.2024122T101559.v2.0"


@pytest.fixture(scope="module")
def published() -> Path:
    return shared_published()


def _items(out: Path) -> list[Path]:
    return sorted((out / "stac").glob("*/*/*.json"))


def test_every_object_validates_offline(published):
    objects = [published / "stac" / "catalog.json"]
    objects += sorted((published / "stac").glob("*/collection.json"))
    objects += _items(published)
    assert len(objects) == 1 + 3 + (4 + 4 + 2)
    for path in objects:
        used = validate_stac(json.loads(path.read_text()))
        assert used, path


def test_stac_validator_cli_with_local_schema_map(published):
    """The reference validator agrees, with every schema URL mapped to the local mirror."""
    root = schema_root()
    item = _items(published)[0]
    collection = published / "stac" / "flood" / "collection.json"
    exe = Path(sys.executable).with_name("stac-validator")
    for path in (item, collection):
        doc = json.loads(path.read_text())
        maps: list[str] = []
        core = [
            p.relative_to(root).as_posix()
            for base in ("schemas.stacspec.org/v1.1.0", "geojson.org", "proj.org")
            for p in (root / base).rglob("*.json")
        ]
        ext = [u.removeprefix("https://") for u in doc.get("stac_extensions", [])]
        for rel in core + ext:
            maps += ["-s", f"https://{rel}", str(root / rel)]
        result = subprocess.run(
            [str(exe), "validate", str(path), *maps, "--no-assets-urls"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        report = json.loads(result.stdout[result.stdout.index("[") : result.stdout.rindex("]") + 1])
        assert report[0]["valid_stac"] is True, report


def test_item_assets_checksums_proj_and_links(published):
    tile = sorted(TILES)[0]
    ident = f"flood-{tile}-{DATES[0]}"
    path = published / "stac" / "flood" / ident / f"{ident}.json"
    item = pystac.Item.from_file(str(path))
    assert item.datetime.date().isoformat() == DATES[0]
    # the product store is an asset of the Collection, not of every date's Item
    assert set(item.assets) == {"water", "water_probability", "thumbnail"}
    for key in ("water", "water_probability", "thumbnail"):
        asset = item.assets[key]
        href = Path(asset.get_absolute_href())
        data = href.read_bytes()
        assert asset.extra_fields["file:size"] == len(data)
        assert asset.extra_fields["file:checksum"] == "1220" + hashlib.sha256(data).hexdigest()
    water = item.assets["water"]
    assert water.media_type == "image/tiff; application=geotiff; profile=cloud-optimized"
    assert water.roles == ["data"]
    assert water.extra_fields["raster:bands"][0]["nodata"] == 255
    classes = {c["value"]: c["name"] for c in water.extra_fields["classification:classes"]}
    assert classes == {0: "dry", 1: "permanent_water", 2: "flood"}
    with rasterio.open(water.get_absolute_href()) as src:
        assert item.properties["proj:code"] == f"EPSG:{src.crs.to_epsg()}"
        assert item.properties["proj:shape"] == [src.height, src.width]
        assert item.properties["proj:transform"] == list(src.transform)[:6]
        # the footprint contains the COG's centre, in lon/lat
        from rasterio.warp import transform as warp

        cx, cy = src.xy(src.height // 2, src.width // 2)
        (lon,), (lat,) = warp(src.crs, "EPSG:4326", [cx], [cy])
        west, south, east, north = item.bbox
        assert west < lon < east and south < lat < north
    assert item.assets["thumbnail"].media_type == "image/png"
    assert item.properties["processing:software"]["geoproc"]
    assert item.properties["geoproc:run_id"] == SHARED_RUN_ID
    assert SHARED_RUN_ID in item.properties["processing:lineage"]
    assert item.properties["geoproc:source_items"] == [SOURCE_ID]
    rels = {link.rel for link in item.links}
    assert {"root", "parent", "collection"} <= rels


def test_zarr_asset_opens_with_its_open_kwargs(published):
    tile = sorted(TILES)[1]
    ident = f"lst-{tile}-{DATES[1]}"
    item = json.loads((published / "stac" / "lst" / ident / f"{ident}.json").read_text())
    collection = json.loads((published / "stac" / "lst" / "collection.json").read_text())
    zarr_asset = collection["assets"][f"zarr-{tile}"]
    assert zarr_asset["type"] == "application/vnd+zarr"
    assert zarr_asset["roles"] == ["data"]
    href = (published / "stac" / "lst" / zarr_asset["href"]).resolve()
    ds = xr.open_dataset(href, **zarr_asset["xarray:open_kwargs"])
    cog = (published / "stac" / "lst" / ident / item["assets"]["lst"]["href"]).resolve()
    with rasterio.open(cog) as src:
        np.testing.assert_array_equal(src.read(1), ds["lst"].isel(time=1).values)
    # datacube fields describe the store without opening it
    dims = zarr_asset["cube:dimensions"]
    assert dims["time"]["values"] == [f"{d}T00:00:00Z" for d in DATES]
    assert dims["x"]["reference_system"] == 32633 and dims["x"]["step"] == 30.0
    assert dims["x"]["extent"][1] - dims["x"]["extent"][0] == 30.0 * ds.sizes["x"]
    assert zarr_asset["cube:variables"]["lst"]["dimensions"] == ["time", "y", "x"]
    assert zarr_asset["cube:variables"]["lst"]["unit"] == "K"


def test_collections_summarise_classes_units_and_method(published):
    flood = json.loads((published / "stac" / "flood" / "collection.json").read_text())
    assert [c["value"] for c in flood["summaries"]["classification:classes"]] == [0, 1, 2]
    assert "OPERA DSWx-HLS ATBD" in flood["sci:citation"]
    assert set(flood["item_assets"]) == {"water", "water_probability", "thumbnail"}
    assert sorted(flood["assets"]) == [f"zarr-{tile}" for tile in sorted(TILES)]
    items = [link for link in flood["links"] if link["rel"] == "item"]
    assert len(items) == 4
    assert flood["extent"]["temporal"]["interval"] == [
        [f"{DATES[0]}T00:00:00Z", f"{DATES[1]}T00:00:00Z"]
    ]
    lst = json.loads((published / "stac" / "lst" / "collection.json").read_text())
    assert lst["summaries"]["geoproc:units"] == ["K"]
    canopy = json.loads((published / "stac" / "canopy" / "collection.json").read_text())
    assert canopy["extent"]["temporal"]["interval"] == [
        ["2023-01-01T00:00:00Z", "2023-12-31T23:59:59Z"]
    ]
    catalog = pystac.Catalog.from_file(str(published / "stac" / "catalog.json"))
    assert sorted(c.id for c in catalog.get_children()) == ["canopy", "flood", "lst"]
    assert len(list(catalog.get_items(recursive=True))) == 10


def test_source_ids_resolve_to_derived_from_links(tmp_path):
    """With the run's STAC API, the recorded ids become links to the source items."""
    out = tmp_path / "out"
    write_product_stores(out, products=("flood",))
    source = {
        "type": "Feature",
        "stac_version": "1.1.0",
        "id": SOURCE_ID,
        "collection": "hls2-s30",
        "geometry": {"type": "Point", "coordinates": [12.0, 47.5]},
        "bbox": [12.0, 47.5, 12.0, 47.5],
        "properties": {"datetime": "2024-05-01T10:15:59Z"},
        "links": [],
        "assets": {},
    }
    collection = {
        "type": "Collection",
        "stac_version": "1.1.0",
        "id": "hls2-s30",
        "description": "test",
        "license": "other",
        "extent": {
            "spatial": {"bbox": [[-180, -90, 180, 90]]},
            "temporal": {"interval": [[None, None]]},
        },
        "links": [],
    }
    (tmp_path / "collection.json").write_text(json.dumps(collection))
    (tmp_path / "items.json").write_text(
        json.dumps({"type": "FeatureCollection", "features": [source]})
    )
    with serve_files([tmp_path / "collection.json", tmp_path / "items.json"]) as url:
        publish_run(str(out), run_id="r", source_catalog=url)
    tile = sorted(TILES)[0]
    ident = f"flood-{tile}-{DATES[0]}"
    item = json.loads((out / "stac" / "flood" / ident / f"{ident}.json").read_text())
    derived = [link["href"] for link in item["links"] if link["rel"] == "derived_from"]
    assert len(derived) == 1
    assert derived[0].endswith(f"/collections/hls2-s30/items/{SOURCE_ID}")
    # the second date recorded no sources: no link is invented
    ident2 = f"flood-{tile}-{DATES[1]}"
    item2 = json.loads((out / "stac" / "flood" / ident2 / f"{ident2}.json").read_text())
    assert not [link for link in item2["links"] if link["rel"] == "derived_from"]
    validate_stac(item)


@contextlib.contextmanager
def _transactions_api() -> Iterator[tuple[str, dict[str, dict]]]:
    """A minimal STAC API Transactions endpoint (POST creates, 409 if present, PUT replaces);
    yields (its URL, the documents it holds by path)."""
    import http.server

    store: dict[str, dict] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output quiet
            pass

        def _body(self) -> dict:
            return json.loads(self.rfile.read(int(self.headers["Content-Length"])))

        def _reply(self, code: int) -> None:
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_POST(self):
            doc = self._body()
            key = f"{self.path.rstrip('/')}/{doc['id']}"
            if key in store:
                return self._reply(409)
            store[key] = doc
            self._reply(201)

        def do_PUT(self):
            if self.path not in store:
                return self._reply(404)
            store[self.path] = self._body()
            self._reply(200)

    with http_server(Handler) as url:
        yield url, store


def test_push_to_a_transactions_api_is_idempotent(tmp_path):
    out = tmp_path / "out"
    write_product_stores(out, products=("lst",))
    with _transactions_api() as (url, store):
        first = publish_run(str(out), run_id="r", stac_api=url)
        assert first["stac_api"] == {"created": 1 + 4, "replaced": 0}
        second = publish_run(str(out), run_id="r", stac_api=url)
        assert second["stac_api"] == {"created": 0, "replaced": 1 + 4}
    items = {k: v for k, v in store.items() if "/items/" in k}
    assert len(items) == 4 and "/collections/lst" in store
    for key, item in items.items():
        assert key == f"/collections/lst/items/{item['id']}"
        assert not [link for link in item["links"] if link["rel"] in ("root", "parent")]
        for asset in item["assets"].values():
            assert Path(asset["href"]).exists(), asset["href"]  # absolute, pointing at the file
        validate_stac(item)
