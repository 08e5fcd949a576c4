"""A product follows a reprocessed item that keeps its id (#15.3).

Why: a reprocessed granule (newer ``updated``/processing version, same id) rewrites its
cube step, but a product fingerprint or append history made of ids alone would not
change, leaving the product "skipped" - or "appended" - with the stale values. The cube
records each step's item versions (``geoproc:source_versions``); the product must read them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from geoproc import storage
from geoproc.cube.assemble import CubeOptions
from geoproc.cube.store import build_cubes
from geoproc.product_runner import product_location, run_product_on_cube
from tests.helpers.cube_builds import cube_path
from tests.helpers.cube_items import TILE, make_item

SHAPE = (80, 80)


def _item(root: Path, i: int, thermal: int, updated: str) -> None:
    """L30 item `i` (28 days apart), clear sky, a flat thermal band of `thermal`."""
    when = np.datetime64("2024-01-15") + 28 * i
    rng = np.random.default_rng(i)
    bands = {
        "B04": rng.integers(500, 1500, SHAPE).astype(np.int16),
        "B05": rng.integers(2000, 4000, SHAPE).astype(np.int16),
        "B10": np.full(SHAPE, thermal, np.int16),
    }
    make_item(
        root, f"L30_{i:02d}", datetime=f"{when}T10:20:30Z", bands=bands,
        fmask=np.zeros(SHAPE, np.uint8),
        properties={"updated": updated, "geoproc:atmosphere": {
            "lwir11": {"transmittance": 0.6}, "water_vapour": 1.5}},
    )  # fmt: skip


def build_cube(catalog: Path, out: Path) -> dict:
    """The test tile's cube with what LST reads (red and nir08 give it emissivity)."""
    return build_cubes(
        str(catalog), collections=["HLSL30_2.0"], aoi=TILE.id, start="2024-01-01",
        end="2024-12-31", out=str(out), tile_size_px=64,
        options=CubeOptions(bands=("red", "nir08", "lwir11")),
    )  # fmt: skip


def _run(out: Path):
    return run_product_on_cube("lst", str(cube_path(out)), str(out), tile=TILE.id)


def _first_date(out: Path) -> tuple[int, np.ndarray]:
    location = product_location(str(out), "lst", TILE.id)
    with xr.open_zarr(storage.zarr_store(location, read_only=True)) as ds:
        return ds.sizes["time"], ds["lst"].isel(time=0).values.copy()


def _reprocess_first(tmp_path: Path, out: Path) -> None:
    _item(tmp_path, 0, 2600, "2024-09-01T00:00:00Z")  # same id, new version, warmer
    rec = build_cube(tmp_path / "items", out)
    assert "2024-01-15" in [w[:10] for w in rec["tiles"][TILE.id]["steps_written"]]


def test_a_reprocessed_item_rewrites_the_product(tmp_path):
    out = tmp_path / "out"
    for i in range(2):
        _item(tmp_path, i, 2000, "2024-03-01T00:00:00Z")
    build_cube(tmp_path / "items", out)
    assert _run(out).status == "written"
    assert _run(out).status == "skipped"  # nothing changed
    steps, before = _first_date(out)
    _reprocess_first(tmp_path, out)
    assert _run(out).status == "written"
    after_steps, after = _first_date(out)
    assert after_steps == steps == 2
    assert not np.allclose(before, after, equal_nan=True)


def test_a_new_date_is_not_appended_over_a_reprocessed_one(tmp_path):
    out = tmp_path / "out"
    for i in range(2):
        _item(tmp_path, i, 2000, "2024-03-01T00:00:00Z")
    build_cube(tmp_path / "items", out)
    first = _run(out)
    assert first.status == "written" and first.mode == "space"  # lst: spatial blocks
    _, before = _first_date(out)
    _item(tmp_path, 2, 2000, "2024-03-01T00:00:00Z")  # a new date ...
    _reprocess_first(tmp_path, out)  # ... and an old date's item reprocessed
    result = _run(out)
    assert result.status == "written"  # not "appended": the old date changed too
    steps, after = _first_date(out)
    assert steps == 3 and not np.allclose(before, after, equal_nan=True)
