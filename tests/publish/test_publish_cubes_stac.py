"""STAC for everything a run writes: the cubes collection, store assets once, render hints."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pystac
import xarray as xr
from rio_tiler.io import Reader

from geoproc.dev.synthetic_cube import write_synthetic_cube
from geoproc.publish.publisher import publish_run
from geoproc.stac_schemas import validate_stac
from tests.helpers.published_stores import DATES, TILES, snapshot, write_product_stores

CUBE_TILE = "33N_0030_0584"


def _publish(out: Path) -> tuple[dict, xr.Dataset]:
    write_product_stores(out, products=("lst",))
    cube = write_synthetic_cube(str(out / "cubes" / f"{CUBE_TILE}.zarr"), nt=3, ny=40, nx=48)
    return publish_run(str(out), run_id="run-1"), cube


def test_cubes_collection_describes_each_cube_once(tmp_path):
    out = tmp_path / "out"
    summary, cube = _publish(out)
    assert summary["cubes"] == {"items": 1}
    collection = json.loads((out / "stac" / "cubes" / "collection.json").read_text())
    ident = f"cube-{CUBE_TILE}"
    item = json.loads((out / "stac" / "cubes" / ident / f"{ident}.json").read_text())
    for obj in (collection, item):
        used = validate_stac(obj)
        assert any("datacube" in u for u in used) or obj is collection
    asset = item["assets"]["zarr"]
    ds = xr.open_dataset(
        (out / "stac" / "cubes" / ident / asset["href"]).resolve(), **asset["xarray:open_kwargs"]
    )
    props = item["properties"]
    dims = props["cube:dimensions"]
    assert dims["time"]["values"] == [
        f"{t}T00:00:00Z" for t in ("2024-06-01", "2024-06-06", "2024-06-11")
    ]
    assert props["start_datetime"] == "2024-06-01T00:00:00Z"
    assert props["end_datetime"] == "2024-06-11T00:00:00Z"
    assert dims["x"]["extent"] == [400_000.0, 400_000.0 + 30.0 * 48]
    assert dims["y"]["extent"] == [5_000_000.0 - 30.0 * 40, 5_000_000.0]
    assert dims["y"]["step"] == -30.0 and dims["x"]["reference_system"] == 32633
    assert set(props["cube:variables"]) == set(ds.data_vars)
    assert props["cube:variables"]["red"]["dimensions"] == ["time", "y", "x"]
    assert props["proj:shape"] == [40, 48]
    assert props["proj:transform"] == [30.0, 0.0, 400_000.0, 0.0, -30.0, 5_000_000.0]
    np.testing.assert_array_equal(ds["red"].values, cube["red"].values)
    catalog = pystac.Catalog.from_file(str(out / "stac" / "catalog.json"))
    assert sorted(c.id for c in catalog.get_children()) == ["cubes", "lst"]
    # a rerun over the same cube writes nothing
    before = snapshot(out)
    again = publish_run(str(out), run_id="run-1")
    assert again["objects"]["written"] == 0 and snapshot(out) == before


def test_render_hints_draw_the_lst_layer_and_band_statistics_are_true(tmp_path):
    out = tmp_path / "out"
    _publish(out)
    collection = json.loads((out / "stac" / "lst" / "collection.json").read_text())
    render = collection["renders"]["lst"]
    assert render["assets"] == ["lst"] and render["rescale"] == [[250.0, 330.0]]
    tile = sorted(TILES)[0]
    ident = f"lst-{tile}-{DATES[0]}"
    item = json.loads((out / "stac" / "lst" / ident / f"{ident}.json").read_text())
    cog = (out / "stac" / "lst" / ident / item["assets"]["lst"]["href"]).resolve()
    with Reader(str(cog)) as src:
        img = src.preview(max_size=128)
    values = img.array.compressed()
    stats = item["assets"]["lst"]["raster:bands"][0]["statistics"]
    with Reader(str(cog)) as src:
        full = src.read(max_size=None).array.compressed()
    np.testing.assert_allclose(stats["minimum"], full.min(), rtol=1e-5)
    np.testing.assert_allclose(stats["maximum"], full.max(), rtol=1e-5)
    np.testing.assert_allclose(stats["mean"], full.mean(), rtol=1e-4)
    # Drawn with the collection's render hints, the tile is not transparent nor one colour.
    img.rescale(in_range=((render["rescale"][0][0], render["rescale"][0][1]),))
    png = img.render(img_format="PNG", colormap=None)
    assert len(png) > 0 and np.ptp(img.array.compressed()) > 10
    assert values.size > 0
    flood_like = item["assets"]["lst"]["raster:bands"][0]
    assert 0 < flood_like["statistics"]["valid_percent"] < 100  # the synthetic store has holes
