"""Assembly: exact geometry, QA masking against truth, S2 offset, same-day mosaic, bad assets."""

from __future__ import annotations

import functools
import http.server

import numpy as np
import pytest
from affine import Affine
from pyproj import Transformer

from geoproc.catalog.search import search_tiles
from geoproc.cube.assemble import CubeOptions, read_step
from geoproc.cube.store import build_cubes
from tests.helpers.cube_items import ENCODE_BASE, TILE, make_item
from tests.helpers.servers import http_server

NAMES = ["green", "red"]


def _steps(root, collections=("HLSL30_2.0",)):
    return (
        search_tiles(
            root / "items",
            [TILE],
            collections=list(collections),
            start="2024-01-01",
            end="2024-12-31",
        )
        .tiles[TILE.id]
        .steps
    )


def _decode(values):
    return np.round(values / 1e-4).astype(int) - ENCODE_BASE


def test_same_zone_window_is_exact(tmp_path):
    make_item(tmp_path, "a", fmask=np.zeros((80, 80), np.uint8))
    data = read_step(_steps(tmp_path)[0], TILE, NAMES, CubeOptions())
    rows, cols = np.indices(TILE.shape)
    assert np.array_equal(_decode(data.bands["green"]), rows + 10)  # source origin 300 m NW
    assert np.array_equal(_decode(data.bands["red"]), cols + 10)


def test_other_zone_reprojects_each_pixel_to_its_source_pixel(tmp_path):
    to33 = Transformer.from_crs(32632, 32633, always_xy=True)
    xs, ys = np.meshgrid(TILE.x_coords, TILE.y_coords)
    sx, sy = to33.transform(xs, ys)
    x0, y0 = np.floor(sx.min() / 30) * 30 - 300, np.ceil(sy.max() / 30) * 30 + 300
    shape = (int((y0 - sy.min()) // 30) + 20, int((sx.max() - x0) // 30) + 20)
    transform = Affine(30.0, 0, x0, 0, -30.0, y0)
    make_item(
        tmp_path,
        "z33",
        crs="EPSG:32633",
        transform=transform,
        shape=shape,
        fmask=np.zeros(shape, np.uint8),
    )
    data = read_step(_steps(tmp_path)[0], TILE, NAMES, CubeOptions())
    expected_row = np.floor((y0 - sy) / 30).astype(int)
    expected_col = np.floor((sx - x0) / 30).astype(int)
    assert np.array_equal(_decode(data.bands["green"]), expected_row)
    assert np.array_equal(_decode(data.bands["red"]), expected_col)


def test_fmask_masking_matches_cloud_truth(tmp_path):
    rng = np.random.default_rng(3)
    fmask = rng.integers(0, 256, (80, 80)).astype(np.uint8)
    fmask[:5] = 255  # fill rows
    make_item(tmp_path, "q", fmask=fmask)
    truth = fmask[10:74, 10:74]
    cloud = ((truth & 0b1110) != 0) | (
        truth == 255
    )  # cloud, adjacent, shadow; aerosol/water do not mask
    data = read_step(_steps(tmp_path)[0], TILE, NAMES, CubeOptions())
    assert np.array_equal(np.isnan(data.bands["red"]), cloud)
    assert np.array_equal(data.qa["fmask"], truth)
    snow = read_step(
        _steps(tmp_path)[0], TILE, NAMES, CubeOptions(fmask_masked=("cloud", "snow_ice"))
    )
    assert np.array_equal(np.isnan(snow.bands["red"]), ((truth & 0b10010) != 0) | (truth == 255))


@pytest.mark.parametrize(
    ("props", "asset_extra", "expected"),
    [({"s2:processing_baseline": "05.10"}, None, 0.05), ({"s2:processing_baseline": "03.01"}, None, 0.15),
     ({}, {"raster:bands": [{"scale": 0.0001, "offset": -0.1}]}, 0.05)],
)  # fmt: skip
def test_s2_offset_follows_the_processing_baseline(tmp_path, props, asset_extra, expected):
    dn = np.full((80, 80), 1500, np.uint16)
    scl = np.full((80, 80), 4, np.uint8)
    scl[:20] = 9  # cloud high probability
    item = make_item(
        tmp_path,
        "s2",
        collection="sentinel-2-l2a",
        bands={"B04": dn},
        fmask=scl,
        qa_key="SCL",
        properties=props,
        nodata=0,
    )
    if asset_extra:
        import json

        item["assets"]["B04"].update(asset_extra)
        (tmp_path / "items" / "s2.json").write_text(json.dumps(item))
    data = read_step(_steps(tmp_path, ("sentinel-2-l2a",))[0], TILE, ["red"], CubeOptions())
    red = data.bands["red"]
    assert np.isnan(red[:10]).all()  # rows 10..19 of the source are cloud
    assert np.allclose(red[10:], expected, atol=1e-6)
    assert np.array_equal(data.qa["scl"][:10], np.full((10, 64), 9))


def test_same_day_duplicates_mosaic_clearest_first(tmp_path):
    f_clear_left = np.zeros((80, 80), np.uint8)
    f_clear_left[:, 40:] = 2  # the low-cloud granule is cloudy on the right
    make_item(
        tmp_path,
        "first",
        cloud_cover=1.0,
        bands={"B04": np.full((80, 80), 111, np.int16)},
        fmask=f_clear_left,
    )
    make_item(
        tmp_path,
        "second",
        cloud_cover=50.0,
        datetime="2024-06-01T10:21:00Z",
        bands={"B04": np.full((80, 80), 222, np.int16)},
        fmask=np.zeros((80, 80), np.uint8),
    )
    steps = _steps(tmp_path)
    assert len(steps) == 1 and steps[0].item_ids == ["first", "second"]
    data = read_step(steps[0], TILE, ["red"], CubeOptions())
    dn = np.round(data.bands["red"] / 1e-4)
    assert (dn[:, :30] == 111).all() and (dn[:, 30:] == 222).all()  # source col 40 = tile col 30
    assert (data.qa["fmask"][:, 30:] == 0).all()  # QA of the granule that supplied the pixel


def test_corrupt_cog_and_404_are_recorded_and_masked(tmp_path):
    make_item(tmp_path, "ok", fmask=np.zeros((80, 80), np.uint8))
    bad = make_item(
        tmp_path, "bad", datetime="2024-06-20T10:20:30Z", fmask=np.zeros((80, 80), np.uint8)
    )
    corrupt = tmp_path / "corrupt.tif"
    corrupt.write_bytes(b"II*\x00" + b"\x13" * 500)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    with http_server(handler) as url:
        bad["assets"]["B03"]["href"] = f"{url}/missing.tif"
        bad["assets"]["B04"]["href"] = str(corrupt)
        import json

        (tmp_path / "items" / "bad.json").write_text(json.dumps(bad))
        rec = build_cubes(
            str(tmp_path / "items"),
            collections=["HLSL30_2.0"],
            aoi=TILE.id,
            start="2024-01-01",
            end="2024-12-31",
            out=str(tmp_path / "out"),
            tile_size_px=64,
            options=CubeOptions(bands=("green", "red", "nir08")),
        )
    errors = rec["tiles"][TILE.id]["asset_errors"]
    failed = {(e["item"], e["asset"]) for e in errors if "missing from item" not in e["error"]}
    assert failed == {("bad", "B03"), ("bad", "B04")}
    assert any("404" in e["error"] for e in errors if e["asset"] == "B03" and e["item"] == "bad")
    import xarray as xr

    ds = xr.open_zarr(tmp_path / "out" / "cubes" / f"{TILE.id}.zarr")
    assert bool(ds.time_complete.all())
    assert ds.red.isel(time=1).isnull().all() and ds.green.isel(time=1).isnull().all()
    assert int(ds.red.isel(time=0).notnull().sum()) == 64 * 64


def test_transient_http_errors_are_retried(tmp_path):
    make_item(tmp_path, "flaky", fmask=np.zeros((80, 80), np.uint8))
    failures = {"left": 2}

    class Flaky(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=str(tmp_path), **k)

        def send_head(self):
            if self.path.endswith("B04.tif") and failures["left"] > 0:
                failures["left"] -= 1
                self.send_error(503, "busy")
                return None
            return super().send_head()

        def log_message(self, *a):
            pass

    with http_server(Flaky) as url:
        import json

        path = tmp_path / "items" / "flaky.json"
        item = json.loads(path.read_text())
        item["assets"]["B04"]["href"] = f"{url}/data/flaky/B04.tif"
        path.write_text(json.dumps(item))
        data = read_step(_steps(tmp_path)[0], TILE, ["red"], CubeOptions())
    assert failures["left"] == 0 and data.errors == []
    assert np.array_equal(_decode(data.bands["red"]), np.indices(TILE.shape)[1] + 10)
