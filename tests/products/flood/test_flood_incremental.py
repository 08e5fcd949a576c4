"""Flood takes new cube dates by appending (spatial blocks, reference from the history):
an appended date gets the classes a full run gives it, older dates keep theirs, and a
reference that drifts past the limit recomputes every date."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from geoproc import storage
from geoproc.dev.synthetic_cube import synthetic_cube
from geoproc.product_runner import run_product_on_cube
from geoproc.products import blocking_of, flood, update_policy
from geoproc.products.flood import incremental, reference

OPTICAL = ("blue", "green", "red", "nir08", "swir16", "swir22")
NAMES = ("water", "water_probability", "uncertainty", "diagnostic", "water_source")


def _cube(nt: int, *, flood_from: int, sar: bool = False, ny: int = 70, nx: int = 60):
    """Optical cube with a permanent river and a flood from date `flood_from` on."""
    ds = synthetic_cube(nt, ny, nx, bands=OPTICAL, chunks=(1, 32, 32), seed=5)
    water = np.zeros((nt, ny, nx), bool)
    water[:, 20:35, :] = True
    water[flood_from:, 35:45, 10:40] = True
    for band, value in (("nir08", 0.02), ("swir16", 0.01), ("swir22", 0.005)):
        ds[band].values[water & np.isfinite(ds[band].values)] = value
    ds["fmask"] = (("time", "y", "x"), np.zeros((nt, ny, nx), "u1"))
    ds["fmask"].encoding = {"chunks": (1, 32, 32)}
    if sar:
        rng = np.random.default_rng(1)
        for pol, land in (("vv", 0.12), ("vh", 0.03)):
            values = np.where(water, 0.004, land) * rng.gamma(8, 1 / 8, water.shape)
            ds[pol] = (("time", "y", "x"), values.astype("f4"))
            ds[pol].encoding = {"chunks": (1, 32, 32)}
    ds = ds.assign_coords(
        time=pd.date_range("2024-01-05", periods=nt, freq="9D").values,
        platform=("time", np.array(["L30", "S30"] * nt)[:nt].astype(str)),
    )
    ds["time_complete"] = ("time", np.ones(nt, bool))
    ds.attrs["geoproc:source_items"] = [[f"item-{t}"] for t in range(nt)]
    return ds


def _write(cube: xr.Dataset, url: str, complete: np.ndarray) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cube.assign(time_complete=("time", complete)).to_zarr(
            storage.zarr_store(url), mode="w", consolidated=True, zarr_format=3
        )


def _open(store: str) -> xr.Dataset:
    return xr.open_zarr(store, consolidated=True, mask_and_scale=False).load()


def _first_then_append(tmp_path: Path, cube: xr.Dataset, **options):
    """A store for every date but the last, the last date added, and a clean full run."""
    nt = cube.sizes["time"]
    url = str(tmp_path / "cube.zarr")
    complete = np.ones(nt, bool)
    complete[-1] = False
    run = dict(tile="T", block_memory_bytes=2**17, options=options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _write(cube, url, complete)
        first = run_product_on_cube("flood", url, str(tmp_path / "out"), **run)
        before = _open(first.store)
        _write(cube, url, np.ones(nt, bool))
        second = run_product_on_cube("flood", url, str(tmp_path / "out"), **run)
        clean = run_product_on_cube("flood", url, str(tmp_path / "clean"), **run)
    return first, before, second, _open(second.store), _open(clean.store)


def test_a_new_date_is_appended_with_the_classes_a_full_run_gives_it(tmp_path):
    cube = _cube(9, flood_from=7)
    first, before, second, appended, clean = _first_then_append(tmp_path, cube)
    assert (first.status, first.mode) == ("written", "space")
    assert (second.status, second.steps, second.mode) == ("appended", 1, "space")
    assert second.reference_drift is not None and second.reference_drift <= 0.01
    assert second.update.startswith("1 date(s) appended, reference changed on ")
    assert second.update.endswith("% of pixels (limit 1 %): older dates kept")
    assert appended.sizes["time"] == 9
    np.testing.assert_array_equal(appended["time"].values, clean["time"].values)
    np.testing.assert_array_equal(appended["platform"].values, clean["platform"].values)
    assert set(np.unique(appended["water"].values[-1])) >= {0, 1, 2}
    for name in NAMES:  # the new date: a full run's bytes; the older dates: untouched
        np.testing.assert_array_equal(appended[name].values[-1], clean[name].values[-1], name)
        np.testing.assert_array_equal(appended[name].values[:-1], before[name].values, name)
    assert appended.attrs["geoproc:source_items"] == clean.attrs["geoproc:source_items"]


def test_a_reference_drift_past_the_limit_recomputes_every_date(tmp_path):
    # The flood covers half the dates once the new one arrives: it becomes reference water.
    cube = _cube(10, flood_from=5)
    _, _, second, appended, clean = _first_then_append(tmp_path, cube)
    assert (second.status, second.steps) == ("written", 10)
    assert second.reference_drift > 0.01
    assert second.update.startswith("full recompute: reference drift ")
    assert second.update.endswith("% > 1 %")
    for name in NAMES:
        np.testing.assert_array_equal(appended[name].values, clean[name].values, name)


def test_a_drift_limit_of_one_keeps_older_dates_even_then(tmp_path):
    cube = _cube(10, flood_from=5)
    _, before, second, appended, clean = _first_then_append(
        tmp_path, cube, reference_drift_limit=1.0
    )
    assert second.status == "appended"
    np.testing.assert_array_equal(appended["water"].values[-1], clean["water"].values[-1])
    np.testing.assert_array_equal(appended["water"].values[:-1], before["water"].values)


def test_with_sentinel1_every_date_is_recomputed(tmp_path):
    cube = _cube(6, flood_from=4, sar=True, ny=40, nx=40)
    first, _, second, appended, clean = _first_then_append(tmp_path, cube)
    assert (first.mode, second.mode) == ("tile", "tile")
    assert (second.status, second.steps, second.update) == ("written", 6, "")
    for name in NAMES:
        np.testing.assert_array_equal(appended[name].values, clean[name].values, name)


@pytest.mark.parametrize("side", [16, 25])
def test_blockwise_reference_from_stored_water_equals_the_whole_array(side):
    ds = _cube(8, flood_from=5).drop_vars("time_complete")
    out = flood.run(ds)
    water, source = out["water"].values, out["water_source"].values
    valid = np.isfinite(out["uncertainty"].values)
    now = np.where(valid, (water != 0).astype("f4"), np.nan)
    whole = reference.reference_from_sources(now, source, min_frequency=0.5, min_observations=2)
    stitched = np.full(whole.shape, -1.0, np.float32)
    for y0 in range(0, whole.shape[0], side):
        for x0 in range(0, whole.shape[1], side):
            window = (slice(None), slice(y0, y0 + side), slice(x0, x0 + side))
            stitched[window[1:]] = incremental.stored_reference(
                water[window], source[window], min_frequency=0.5, min_observations=2
            )
    np.testing.assert_array_equal(stitched, whole)
    # ... and it is the reference run() classified every date with (diagnostic bits 8/9).
    classified = incremental.classified_reference(out["diagnostic"].values)
    seen = valid.any(axis=0)
    np.testing.assert_array_equal(classified[seen], whole[seen])
    assert np.isfinite(whole).mean() > 0.5 and (whole == 1).any() and (whole == 0).any()


def test_an_append_killed_before_its_metadata_reruns_to_the_clean_bytes(tmp_path, monkeypatch):
    cube = _cube(9, flood_from=7)
    url, out = str(tmp_path / "cube.zarr"), str(tmp_path / "out")
    complete = np.ones(9, bool)
    complete[-1] = False

    def killed(*args, **kwargs):
        raise RuntimeError("killed after the chunks, before the metadata")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _write(cube, url, complete)
        first = run_product_on_cube("flood", url, out, tile="T")
        _write(cube, url, np.ones(9, bool))
        with monkeypatch.context() as m:
            m.setattr(flood, "append_verdict", killed)
            with pytest.raises(RuntimeError, match="killed"):
                run_product_on_cube("flood", url, out, tile="T")
        assert _open(first.store).sizes["time"] == 8  # readers still see the old version
        rerun = run_product_on_cube("flood", url, out, tile="T")
        clean = run_product_on_cube("flood", url, str(tmp_path / "clean"), tile="T")
    assert rerun.status == "appended"
    appended, fresh = _open(rerun.store), _open(clean.store)
    for name in NAMES:
        np.testing.assert_array_equal(appended[name].values[-1], fresh[name].values[-1], name)


def test_only_the_blocked_history_configuration_appends():
    declared = blocking_of(flood.SPEC)
    assert declared.appends("space", {}, OPTICAL)
    assert not declared.appends("tile", {}, OPTICAL)  # vv/vh, U-Net, a user reference
    assert not declared.appends("space", {}, (*OPTICAL, "vv"))  # even where space is forced
    assert not declared.appends("space", {"reference_time": ("2024-01-01", "2024-03-01")})
    assert "older dates keep their classes" in update_policy("flood")


def test_append_takes_the_options_a_full_run_takes():
    """A request may name `reference: null` or hand a `params` object: a full run accepts
    both, so an append must too."""
    from geoproc.products.flood import incremental
    from geoproc.products.flood.params import FloodParams

    base = FloodParams(reference_drift_limit=0.05)
    p = incremental._params({"reference": None, "params": base, "reference_min_observations": 3})
    assert p.reference_drift_limit == 0.05 and p.reference_min_observations == 3
