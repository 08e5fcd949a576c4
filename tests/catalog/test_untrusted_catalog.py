"""A hostile catalog cannot make geoproc read local files or internal addresses, nor write
outside the output prefix."""

from __future__ import annotations

import json

import numpy as np
import pytest

from geoproc.catalog.items import parse_item
from geoproc.cube.assemble import CubeOptions, read_step
from geoproc.errors import StorageURLError, UntrustedHrefError
from geoproc.href_policy import HrefPolicy, check_href
from geoproc.storage import parse_url, safe_key

REMOTE = HrefPolicy("https://stac.example.org/v1")
LOCAL = HrefPolicy("/data/catalog")


@pytest.mark.parametrize(
    "href, needle",
    [
        ("/etc/passwd", "local file"),
        ("file:///etc/passwd", "local file"),
        ("../../../../etc/shadow", "local file"),
        ("/vsicurl/http://169.254.169.254/latest/meta-data/", "GDAL virtual path"),
        ("/vsizip//etc/archive.zip/x.tif", "GDAL virtual path"),
        ("NETCDF:/etc/passwd:var", "GDAL driver path"),
        ("http://169.254.169.254/latest/meta-data/iam/", "internal address"),
        ("http://127.0.0.1:8080/admin", "internal address"),
        ("http://localhost/secret.tif", "internal address"),
        ("http://10.0.0.5/x.tif", "internal address"),
        ("http://[::1]/x.tif", "internal address"),
        ("http://0.0.0.0/x.tif", "internal address"),
        ("ftp://example.org/x.tif", "scheme 'ftp'"),
        ("zip:///tmp/a.zip!x.tif", "scheme 'zip'"),
        ("https://user:pw@example.org/x.tif", "credentials"),
        ("", "empty href"),
    ],
)
def test_remote_catalog_hrefs_refused(href, needle):
    with pytest.raises(UntrustedHrefError) as err:
        check_href(href, REMOTE)
    assert needle in str(err.value)
    if "pw@" in href:
        assert "pw" not in str(err.value)


@pytest.mark.parametrize(
    "href",
    [
        "https://data.example.org/HLS/B04.tif",
        "http://8.8.8.8/x.tif",  # a public address (no DNS needed)
        "https://stac.example.org/assets/x.tif",  # the catalog's own host
        "s3://bucket/key/B04.tif",
    ],
)
def test_remote_catalog_public_hrefs_allowed(href):
    assert check_href(href, REMOTE) == href


def test_local_catalog_may_read_local_files_and_loopback():
    assert check_href("/data/x.tif", LOCAL) == "/data/x.tif"
    assert check_href("http://127.0.0.1:9000/x.tif", LOCAL)
    served = HrefPolicy("http://127.0.0.1:8765")  # `geoproc stac serve` on this machine
    assert check_href("/data/x.tif", served) and check_href("http://10.0.0.5/x.tif", served)
    with pytest.raises(UntrustedHrefError):
        check_href("/vsicurl/http://127.0.0.1/x.tif", LOCAL)


def test_explicit_allowances_from_the_environment(monkeypatch):
    from geoproc.href_policy import policy_for

    monkeypatch.setenv("GEOPROC_ALLOWED_ASSET_HOSTS", "minio.internal, 10.0.0.5")
    monkeypatch.setenv("GEOPROC_ALLOW_LOCAL_ASSETS", "true")
    policy = policy_for("https://stac.example.org")
    assert check_href("http://10.0.0.5/x.tif", policy)
    assert check_href("http://minio.internal/x.tif", policy)
    assert check_href("/mnt/archive/x.tif", policy)
    with pytest.raises(UntrustedHrefError):
        check_href("http://169.254.169.254/", policy)


def test_hostile_item_is_masked_and_reported_not_read(tmp_path):
    """A remote catalog's item pointing at a readable local GeoTIFF: masked, reported, unread."""
    import rasterio
    from rasterio.transform import from_origin

    from geoproc.catalog.search import group_time_steps
    from geoproc.catalog.sensors import profile_for
    from geoproc.grid import parse_tile_id

    tile = parse_tile_id("32N_0188_1371", tile_size_px=16, resolution=30.0)
    secret = tmp_path / "secret.tif"
    x0, y0 = tile.bounds[0], tile.bounds[3]
    with rasterio.open(
        secret, "w", driver="GTiff", width=16, height=16, count=1, dtype="int16",
        crs=tile.crs, transform=from_origin(x0, y0, 30, 30),
    ) as dst:  # fmt: skip
        dst.write(np.full((1, 16, 16), 1234, np.int16))
    fmask = tmp_path / "fmask.tif"
    with rasterio.open(
        fmask, "w", driver="GTiff", width=16, height=16, count=1, dtype="uint8",
        crs=tile.crs, transform=from_origin(x0, y0, 30, 30),
    ) as dst:  # fmt: skip
        dst.write(np.zeros((1, 16, 16), np.uint8))
    item = {
        "type": "Feature",
        "id": "hostile",
        "collection": "HLSL30_2.0",
        "geometry": None,
        "properties": {"datetime": "2024-06-01T10:00:00Z"},
        "assets": {"B04": {"href": str(secret)}, "Fmask": {"href": str(fmask)}},
    }
    remote = parse_item(item, catalog="https://stac.example.org/v1")
    step = group_time_steps([(remote, profile_for("HLSL30_2.0"))], tile)[0]
    data = read_step(step, tile, ["red"], CubeOptions())
    assert np.isnan(data.bands["red"]).all()
    # Without its QA a granule adds nothing, so B04 is not even attempted.
    assert {e["asset"] for e in data.errors} == {"Fmask"}
    assert all("local file" in e["error"] for e in data.errors)
    # The same item from a local catalog is the user's own data and is read.
    local = parse_item(item, catalog=str(tmp_path))
    step = group_time_steps([(local, profile_for("HLSL30_2.0"))], tile)[0]
    data = read_step(step, tile, ["red"], CubeOptions())
    assert np.allclose(data.bands["red"], 1234 * 1e-4) and data.errors == []


def test_search_stamps_items_with_their_catalog(tmp_path):
    from geoproc.catalog.search import search_tiles
    from geoproc.grid import parse_tile_id

    tile = parse_tile_id("32N_0188_1371", tile_size_px=16, resolution=30.0)
    item = {
        "type": "Feature",
        "id": "a",
        "collection": "HLSL30_2.0",
        "geometry": tile.footprint_lonlat.__geo_interface__,
        "properties": {"datetime": "2024-06-01T10:00:00Z", "eo:cloud_cover": 1},
        "assets": {},
    }
    (tmp_path / "a.json").write_text(json.dumps(item))
    result = search_tiles(
        tmp_path, [tile], collections=["HLSL30_2.0"], start="2024-01-01", end="2024-12-31"
    )
    (step,) = result.tiles[tile.id].steps
    assert step.items[0].catalog == str(tmp_path)


@pytest.mark.parametrize(
    "part", ["../x", "a/../../b", "..", "a\\..\\b", "x\x00y", "tile\nid", "./.."]
)
def test_output_keys_cannot_escape_the_prefix(part):
    with pytest.raises(StorageURLError) as err:
        parse_url("s3://bucket/prefix").join("products", part)
    assert "output prefix" in str(err.value)


def test_output_keys_keep_ordinary_names():
    root = parse_url("s3://bucket/prefix")
    assert root.join("cog", "flood/32N_0188_1371/2024-06-01T10:00:00", "water.tif").path == (
        "bucket/prefix/cog/flood/32N_0188_1371/2024-06-01T10:00:00/water.tif"
    )
    assert safe_key("/stac/catalog.json") == "stac/catalog.json"  # leading slash is relative


def test_tile_ids_from_aoi_cannot_be_paths():
    from geoproc.errors import InvalidAOIError
    from geoproc.grid import parse_aoi

    for aoi in ("../../etc", "32N_0188_1371/../../x", "32N_0188_1371,../x"):
        with pytest.raises(InvalidAOIError):
            parse_aoi(aoi)
