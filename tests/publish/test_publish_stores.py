"""Reading product stores for publishing: labels, incomplete steps, static maps, sources."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from geoproc import storage
from geoproc.errors import StoreError
from geoproc.publish.product_stores import find_product_stores, step_interval
from geoproc.publish.publisher import publish_run
from tests.helpers.published_stores import TILES, build_canopy_store, build_flood_store


def _write(out, product, tile, ds):
    url = storage.parse_url(str(out)).join("products", product, f"{tile}.zarr")
    ds.to_zarr(storage.zarr_store(url), mode="w", consolidated=True, zarr_format=3)


def test_two_steps_on_one_day_get_distinct_labels_and_incomplete_steps_are_skipped(tmp_path):
    tile = sorted(TILES)[0]
    ds = build_flood_store(tile, dates=("2024-05-01", "2024-05-01", "2024-05-09"))
    ds = ds.assign_coords(platform=("time", np.array(["sentinel-2a", "landsat_9", "x"])))
    ds["time_complete"] = ("time", np.array([True, True, False]))
    ds.attrs["source_items"] = "[]"
    ds.attrs["geoproc:source_items"] = [["S2A_1"], ["LC09_1", "LC09_2"], []]
    del ds.attrs["source_items"]
    _write(tmp_path, "flood", tile, ds)
    (store,) = find_product_stores(str(tmp_path))
    steps = store.steps()
    assert [label for label, _ in steps] == ["2024-05-01-sentinel-2a", "2024-05-01-landsat-9"]
    assert store.source_items(*steps[1]) == ["LC09_1", "LC09_2"]
    summary = publish_run(str(tmp_path), run_id="r")
    assert summary["products"]["flood"]["items"] == 2
    assert not (tmp_path / "cog" / "flood" / tile / "2024-05-09").exists()


def test_static_map_takes_its_period_from_attributes_or_says_what_to_add(tmp_path):
    tile = sorted(TILES)[1]
    ds = build_canopy_store(tile).isel(year=0, drop=True)
    ds.attrs.update(time_coverage_start="2023-01-01", time_coverage_end="2023-12-31")
    _write(tmp_path, "canopy", tile, ds)
    (store,) = find_product_stores(str(tmp_path))
    assert store.steps() == [("2023-01-01_2023-12-31", None)]
    start, end = step_interval("2023-01-01_2023-12-31")
    assert start == pd.Timestamp("2023-01-01", tz="UTC")
    assert end == pd.Timestamp("2023-12-31 23:59:59", tz="UTC")
    publish_run(str(tmp_path), run_id="r")
    assert (
        tmp_path / "cog" / "canopy" / tile / "2023-01-01_2023-12-31" / "canopy_class.tif"
    ).exists()

    del ds.attrs["time_coverage_start"], ds.attrs["time_coverage_end"]
    _write(tmp_path / "bare", "canopy", tile, ds)
    with pytest.raises(StoreError, match="time"):
        publish_run(str(tmp_path / "bare"), run_id="r")


def test_a_store_made_by_the_inference_engine_publishes_with_its_model_card(tmp_path):
    """The real engine's product store (not our synthetic one) goes through unchanged."""
    import json

    import rasterio
    import xarray as xr

    from geoproc.dev.synthetic_cube import write_synthetic_cube
    from geoproc.inference.engine import run_inference
    from geoproc.inference.kernel import ModelKernel
    from geoproc.inference.registry import find_card
    from geoproc.stac_schemas import validate_stac

    cube = str(tmp_path / "cubes" / "33N_0001_0001.zarr")
    store = str(tmp_path / "products" / "flood" / "33N_0001_0001.zarr")
    write_synthetic_cube(cube, nt=2, ny=96, nx=80, chunks=(1, 32, 32))
    card = find_card("tiny-fcn")
    run_inference(cube, ModelKernel(card), store)
    summary = publish_run(str(tmp_path), run_id="eng")
    assert summary["products"]["flood"]["items"] == 2
    ds = xr.open_zarr(store, mask_and_scale=False)
    for i, t in enumerate(ds["time"].values):
        label = str(t)[:10]
        for name in ds.data_vars:
            if ds[name].dims != ("time", "y", "x"):
                continue
            path = tmp_path / "cog" / "flood" / "33N_0001_0001" / label / f"{name}.tif"
            with rasterio.open(path) as src:
                np.testing.assert_array_equal(src.read(1), ds[name].isel(time=i).values)
                assert src.crs.to_epsg() == 32633
    collection = json.loads((tmp_path / "stac" / "flood" / "collection.json").read_text())
    validate_stac(collection)
    card_asset = collection["assets"]["model-card"]
    doc = json.loads((tmp_path / "stac" / "flood" / card_asset["href"]).read_text())
    assert doc["properties"]["mlm:name"] == card.name
    weights = {a.get("file:checksum") for a in doc["assets"].values()}
    assert f"1220{ds.attrs['model_sha256']}" in weights
