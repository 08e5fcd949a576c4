"""`geoproc cube build` from the command line: exit codes, messages, the run record."""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

from geoproc.catalog.search import search_tiles
from geoproc.cli import main
from geoproc.cube.assemble import CubeOptions, assemble_tile
from tests.helpers.cube_items import TILE, make_item


def _args(cat, out, **over):
    opts = {"--catalog": str(cat), "--collections": "HLSL30_2.0", "--aoi": TILE.id, "--start": "2024-01-01",
            "--end": "2024-12-31", "--out": str(out), "--tile-size": "64", "--bands": "red,nir08"}  # fmt: skip
    opts.update(over)
    return ["cube", "build", *[x for kv in opts.items() for x in kv]]


def test_bad_input_exits_2_with_a_message_naming_the_option(tmp_path, capsys):
    assert main(_args(tmp_path, tmp_path / "out", **{"--start": "2024-13-01"})) == 2
    assert "--start" in capsys.readouterr().err
    assert main(_args(tmp_path, tmp_path / "out", **{"--collections": "LANDSAT9"})) == 2
    assert "--collections" in capsys.readouterr().err
    assert main(_args(tmp_path, tmp_path / "out", **{"--aoi": "1,2,3"})) == 2
    assert "--aoi" in capsys.readouterr().err


def test_empty_search_is_a_no_data_error(tmp_path, capsys):
    (tmp_path / "items").mkdir()
    assert main(_args(tmp_path / "items", tmp_path / "out")) == 1
    assert "widen" in capsys.readouterr().err


def test_cli_build_writes_record_and_matches_the_lazy_cube(tmp_path):
    make_item(tmp_path, "a", fmask=np.zeros((80, 80), np.uint8))
    make_item(tmp_path, "b", datetime="2024-07-01T10:00:00Z", fmask=np.full((80, 80), 8, np.uint8))
    record = tmp_path / "record.json"
    assert main(_args(tmp_path / "items", tmp_path / "out", **{"--record": str(record)})) == 0
    rec = json.loads(record.read_text())
    assert len(rec["tiles"][TILE.id]["steps_written"]) == 2
    stored = xr.open_zarr(tmp_path / "out" / "cubes" / f"{TILE.id}.zarr").load()
    steps = (
        search_tiles(
            tmp_path / "items",
            [TILE],
            collections=["HLSL30_2.0"],
            start="2024-01-01",
            end="2024-12-31",
        )
        .tiles[TILE.id]
        .steps
    )
    lazy = assemble_tile(
        steps, TILE, collections=["HLSL30_2.0"], options=CubeOptions(bands=("red", "nir08"))
    ).compute()
    np.testing.assert_allclose(stored.red.values, lazy.red.values, atol=5e-5)
    assert np.isnan(stored.red.values[1]).all()  # shadow bit everywhere on the second date
    assert np.array_equal(stored.fmask.values, lazy.fmask.values)
