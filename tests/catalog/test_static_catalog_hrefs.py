"""A static catalog's relative asset hrefs resolve against the item file, wherever it lives.

Why: ``"./B04.tif"`` in ``items/a.json`` means ``items/B04.tif`` next to that file; left
relative it would be read from the reader's working directory (or not at all on a worker).
Checked for the three places a static catalog may live: local disk, http(s) and s3.
"""

from __future__ import annotations

import functools
import http.server
import json
from pathlib import Path

from geoproc.catalog.source import iter_catalog_items

COLLECTION = "HLSL30_2.0"


def _write_catalog(root: Path) -> dict[str, str]:
    """catalog.json -> sub/catalog.json -> items/a.json, with relative links and hrefs.

    Returns the asset hrefs relative to `root` that the walk must resolve.
    """
    (root / "sub" / "items").mkdir(parents=True)
    item = {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": "a",
        "collection": COLLECTION,
        "geometry": {"type": "Point", "coordinates": [10.0, 45.0]},
        "bbox": [10.0, 45.0, 10.0, 45.0],
        "properties": {"datetime": "2024-06-05T10:20:30Z"},
        "links": [],
        "assets": {
            "B04": {"href": "./B04.tif", "type": "image/tiff"},
            "Fmask": {"href": "../masks/Fmask.tif", "type": "image/tiff"},
            "B05": {"href": "https://example.org/granules/B05.tif", "type": "image/tiff"},
        },
    }
    (root / "sub" / "items" / "a.json").write_text(json.dumps(item))
    base = {"type": "Catalog", "stac_version": "1.0.0", "description": "t"}
    sub = base | {"id": "sub", "links": [{"rel": "item", "href": "./items/a.json"}]}
    (root / "sub" / "catalog.json").write_text(json.dumps(sub))
    top = base | {"id": "top", "links": [{"rel": "child", "href": "./sub/catalog.json"}]}
    (root / "catalog.json").write_text(json.dumps(top))
    return {
        "B04": "sub/items/B04.tif",
        "Fmask": "sub/masks/Fmask.tif",
    }


def _hrefs(catalog: str) -> dict[str, str]:
    items = list(iter_catalog_items(catalog, collections=[COLLECTION]))
    assert [getattr(i, "id", i) for i in items] == ["a"]
    return {k: a["href"] for k, a in items[0].assets.items()}


def _expected(base: str, relative: dict[str, str]) -> dict[str, str]:
    return {k: f"{base}/{v}" for k, v in relative.items()} | {
        "B05": "https://example.org/granules/B05.tif"
    }


def test_local_static_catalog_gives_absolute_asset_paths(tmp_path, monkeypatch):
    relative = _write_catalog(tmp_path / "cat")
    monkeypatch.chdir(tmp_path)  # a relative href must not come out relative to the CWD
    assert _hrefs(str(tmp_path / "cat" / "catalog.json")) == _expected(
        str(tmp_path / "cat"), relative
    )


def _http_folder(root: Path):
    """`root` served read-only on a loopback port (`tests.helpers.servers.http_server`)."""
    from tests.helpers.servers import http_server

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    return http_server(functools.partial(Quiet, directory=str(root)))


def test_http_static_catalog_gives_absolute_asset_urls(tmp_path):
    relative = _write_catalog(tmp_path / "cat")
    with _http_folder(tmp_path) as url:
        assert _hrefs(f"{url}/cat/catalog.json") == _expected(f"{url}/cat", relative)


def test_s3_static_catalog_gives_absolute_asset_urls(tmp_path, s3_bucket, s3_env):
    from tests.helpers.servers import s3_client

    relative = _write_catalog(tmp_path / "cat")
    client = s3_client(s3_env)
    for f in (tmp_path / "cat").rglob("*.json"):
        key = f"cat/{f.relative_to(tmp_path / 'cat').as_posix()}"
        client.put_object(Bucket=s3_bucket, Key=key, Body=f.read_bytes())
    assert _hrefs(f"s3://{s3_bucket}/cat/catalog.json") == _expected(
        f"s3://{s3_bucket}/cat", relative
    )
