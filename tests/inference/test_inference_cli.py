"""`geoproc models list|show` and the `bench infer` measurement body, run in-process."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from geoproc.cli import main
from geoproc.dev.synthetic_cube import write_synthetic_cube
from geoproc.inference.registry import find_card

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def test_models_list_and_show(capsys):
    card = find_card("tiny-fcn")
    assert main(["models", "list"]) == 0
    listing = capsys.readouterr().out
    assert "tiny-fcn" in listing and card.sha256[:12] in listing
    assert main(["models", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["sha256"] == card.sha256 and rows[0]["inputs"] == list(card.input_bands)
    assert main(["models", "show", "tiny-fcn@1.0.0"]) == 0
    shown = capsys.readouterr().out
    assert "0=land, 1=water" in shown and f"halo {card.halo} px" in shown
    assert main(["models", "show", "tiny-fcn", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["properties"]["mlm:name"] == "tiny-fcn"


def test_unknown_model_is_a_usage_error_without_traceback(capsys):
    assert main(["models", "show", "no-such-model"]) == 2
    err = capsys.readouterr().err
    assert "known models: tiny-fcn@1.0.0" in err and "Traceback" not in err


def test_bench_modes_measure_the_same_work_and_naive_equals_engine(tmp_path):
    from geoproc.dev.bench.infer import _measure

    cube = str(tmp_path / "cube.zarr")
    write_synthetic_cube(cube, nt=1, ny=48, nx=40, chunks=(1, 16, 16))
    common = {"cube": cube, "model": "tiny-fcn", "batch_bytes": 2**20, "device": "cpu"}
    common |= {"precision": "float32", "threads": None}
    results = {}
    for mode in ("bare", "engine", "naive"):
        out = str(tmp_path / f"{mode}.zarr")
        results[mode] = _measure({**common, "mode": mode, "out": out})
        assert results[mode]["pixels"] == 48 * 40 and results[mode]["px_per_s"] > 0
    engine = xr.open_zarr(tmp_path / "engine.zarr").water_probability.values
    naive = xr.open_zarr(tmp_path / "naive.zarr").water_probability.values
    np.testing.assert_allclose(engine, naive, atol=1e-5)  # NaN where masked in both
    assert np.isnan(engine).any()
