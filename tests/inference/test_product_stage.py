"""The blocked product stage: blocks cover the tile, blockwise results equal the whole-array
results, and the store a blocked run writes has the whole-tile path's bytes."""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from geoproc import storage
from geoproc.dev.synthetic_cube import synthetic_cube
from geoproc.inference import product_stage
from geoproc.inference.blocks import block_side, chunk_groups, space_blocks, time_blocks
from geoproc.product_runner import open_cube, run_product_on_cube, select_inputs
from geoproc.products import flood, lst, stage_blocking

OPTICAL = ("blue", "green", "red", "nir08", "swir16", "swir22")


def _cube(nt: int = 10, ny: int = 70, nx: int = 60, *, seed: int = 3) -> xr.Dataset:
    """A cube-store-shaped Dataset: optical + thermal bands, fmask, platform, completion."""
    ds = synthetic_cube(nt, ny, nx, bands=OPTICAL, chunks=(1, 32, 32), seed=seed)
    rng = np.random.default_rng(seed)
    # Water in a band across the tile, so flood's classes and the reference both vary.
    water = np.zeros((nt, ny, nx), bool)
    water[:, 20:35, :] = True
    water[nt // 2 :, 35:45, 10:40] = True  # a flood in the second half
    for band, value in (("nir08", 0.02), ("swir16", 0.01), ("swir22", 0.005)):
        ds[band].values[water & np.isfinite(ds[band].values)] = value
    ds["lwir11"] = (("time", "y", "x"), (290 + rng.normal(0, 3, (nt, ny, nx))).astype("f4"))
    ds["fmask"] = (("time", "y", "x"), np.zeros((nt, ny, nx), "u1"))
    for name in ("lwir11", "fmask"):
        ds[name].encoding = {"chunks": (1, 32, 32)}
    ds = ds.assign_coords(
        time=pd.date_range("2024-01-05", periods=nt, freq="9D").values,
        platform=("time", np.array(["L30", "S30"] * nt)[:nt].astype(str)),
    )
    ds["time_complete"] = ("time", np.ones(nt, bool))
    ds.attrs["geoproc:source_items"] = [[f"item-{t}"] for t in range(nt)]
    return ds


@pytest.fixture
def cube_url(tmp_path: Path) -> str:
    url = str(tmp_path / "cube.zarr")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _cube().to_zarr(storage.zarr_store(url), mode="w", consolidated=True, zarr_format=3)
    return url


def _digest(root: str) -> dict[str, str]:
    base = Path(root)
    return {
        str(p.relative_to(base)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(base.rglob("*"))
        if p.is_file()
    }


def test_blocks_cover_the_tile_once_with_their_halo():
    blocks = space_blocks(5, 70, 60, side=16, halo=2)
    cover = np.zeros((70, 60), int)
    for b in blocks:
        cover[b.y, b.x] += 1
        assert b.read_y.start == max(0, b.y.start - 2) and b.read_y.stop == min(70, b.y.stop + 2)
        crop = b.crop
        assert crop["y"].stop - crop["y"].start == b.y.stop - b.y.start
    assert (cover == 1).all()
    assert len(blocks) == 5 * 4
    assert [(b.time.start, b.time.stop) for b in time_blocks(7, 4, 4, steps=3)] == [
        (0, 3),
        (3, 6),
        (6, 7),
    ]
    groups = chunk_groups(space_blocks(1, 64, 64, side=16, halo=0), chunk=32)
    assert sorted(len(g) for g in groups) == [4, 4, 4, 4]


def test_block_side_follows_the_budget():
    # 1 MiB at 100 B/px fits 102 px: the largest power-of-two divisor of 512 below is 64.
    assert block_side(2**20, bytes_per_pixel=100, chunk=512) == 64
    # A budget fitting 1100 px a side gives whole multiples of the chunk.
    assert block_side(1100**2 * 10, bytes_per_pixel=10, chunk=512) == 1024
    # Twice the series halves the area per block: the side shrinks, memory does not grow.
    one = block_side(2**26, bytes_per_pixel=1000, chunk=512)
    two = block_side(2**26, bytes_per_pixel=2000, chunk=512)
    assert two < one and two * two * 2000 <= 2**26


def test_declarations():
    assert stage_blocking(flood, OPTICAL, {}) == "space"
    assert stage_blocking(flood, (*OPTICAL, "vv"), {}) == "tile"  # scene-wide SAR threshold
    assert stage_blocking(flood, OPTICAL, {"algorithm": "unet"}) == "tile"
    assert stage_blocking(flood, OPTICAL, {"reference": np.zeros((4, 4))}) == "tile"
    assert stage_blocking(lst, ("lwir11",), {}) == "space"  # scene percentile from a first pass
    assert stage_blocking(lst, ("lwir11",), {"cloud_screen": {"near_cloud_sigma_k": 5.0}}) == "time"
    assert stage_blocking(lst, ("lwir11",), {"cloud_screen": False}) == "space"


def test_blockwise_flood_equals_whole_array(cube_url, tmp_path):
    """Per-pixel-over-time statistics (the occurrence reference) are exact under blocking."""
    inputs = product_stage.declared_inputs(
        select_inputs(open_cube(cube_url, dask=False), "flood"), flood.SPEC
    )
    whole = flood.run(inputs.load())
    location = storage.parse_url(str(tmp_path / "blocked.zarr"))
    product_stage.run_blocked(
        flood, inputs, location, mode="space", options={}, finish=lambda r: r, budget_bytes=2**17
    )
    assert len(product_stage.plan_blocks(inputs, mode="space", halo=1, budget_bytes=2**17)) > 4
    blocked = xr.open_zarr(
        storage.zarr_store(location), consolidated=True, mask_and_scale=False
    ).load()
    assert set(np.unique(whole["water"].values)) >= {0, 1, 2}
    for name in ("water", "water_probability", "diagnostic", "water_source"):
        np.testing.assert_array_equal(blocked[name].values, whole[name].values, err_msg=name)
    np.testing.assert_allclose(
        blocked["uncertainty"].values, whole["uncertainty"].values, rtol=1e-6, equal_nan=True
    )


@pytest.mark.parametrize(
    ("product", "mode", "budget"),
    [("flood", "space", 2**17), ("lst", "space", 2**17), ("canopy", "space", 2**16)],
)
def test_blocked_store_has_the_whole_tile_bytes(cube_url, tmp_path, product, mode, budget):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        whole = run_product_on_cube(
            product, cube_url, str(tmp_path / "whole"), tile="T", blocking="tile"
        )
        blocked = run_product_on_cube(
            product, cube_url, str(tmp_path / "blocked"), tile="T", block_memory_bytes=budget
        )
    assert (whole.mode, blocked.mode) == ("tile", mode)
    assert blocked.steps == whole.steps == {"flood": 10, "lst": 5, "canopy": 1}[product]
    a, b = _digest(whole.store), _digest(blocked.store)
    assert len(a) > 15
    assert a == b


def test_new_dates_append_to_an_incremental_product(tmp_path):
    """LST dates are independent: a new cube date adds its steps, older chunks stay as they
    were, and the store reads as a clean full run would (values, times, platforms)."""
    cube = _cube(nt=10)
    url = str(tmp_path / "cube.zarr")
    complete = np.ones(10, bool)
    complete[8:] = False  # the last two dates (one L30) arrive later
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cube.assign(time_complete=("time", complete)).to_zarr(
            storage.zarr_store(url), mode="w", consolidated=True, zarr_format=3
        )
        first = run_product_on_cube("lst", url, str(tmp_path / "out"), tile="T")
        old_chunk = Path(first.store) / "lst" / "0.0.0"
        stamp = old_chunk.stat().st_mtime_ns
        xr.Dataset({"time_complete": ("time", np.ones(10, bool))}).to_zarr(
            storage.zarr_store(url), mode="r+", region={"time": slice(0, 10)}
        )
        second = run_product_on_cube("lst", url, str(tmp_path / "out"), tile="T")
        third = run_product_on_cube("lst", url, str(tmp_path / "out"), tile="T")
        clean = run_product_on_cube("lst", url, str(tmp_path / "clean"), tile="T")
    assert (first.status, first.steps) == ("written", 4)
    assert (second.status, second.steps, second.mode) == ("appended", 1, "time")
    assert third.status == "skipped"
    assert old_chunk.stat().st_mtime_ns == stamp
    appended = xr.open_zarr(second.store, consolidated=True).load()
    fresh = xr.open_zarr(clean.store, consolidated=True).load()
    assert appended.sizes["time"] == 5
    np.testing.assert_array_equal(appended["time"].values, fresh["time"].values)
    np.testing.assert_array_equal(appended["platform"].values, fresh["platform"].values)
    for name in fresh.data_vars:
        np.testing.assert_array_equal(appended[name].values, fresh[name].values, err_msg=name)
    assert appended.attrs["geoproc:source_items"] == fresh.attrs["geoproc:source_items"]


def test_an_lst_append_killed_before_its_metadata_reruns_to_the_clean_store(tmp_path, monkeypatch):
    """A crash after the arrays grew (before the consolidated metadata): the rerun writes the
    new date where the first try did, from the marker's count, not after the grown arrays."""
    import zarr

    cube = _cube(nt=10)
    url = str(tmp_path / "cube.zarr")
    complete = np.ones(10, bool)
    complete[8:] = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cube.assign(time_complete=("time", complete)).to_zarr(
            storage.zarr_store(url), mode="w", consolidated=True, zarr_format=3
        )
        first = run_product_on_cube("lst", url, str(tmp_path / "out"), tile="T")
        xr.Dataset({"time_complete": ("time", np.ones(10, bool))}).to_zarr(
            storage.zarr_store(url), mode="r+", region={"time": slice(0, 10)}
        )

        def killed(*args, **kwargs):
            raise RuntimeError("killed after the chunks, before the metadata")

        with monkeypatch.context() as m:
            m.setattr(zarr, "consolidate_metadata", killed)
            with pytest.raises(RuntimeError, match="killed"):
                run_product_on_cube("lst", url, str(tmp_path / "out"), tile="T")
        assert xr.open_zarr(first.store, consolidated=True).sizes["time"] == 4  # old version
        rerun = run_product_on_cube("lst", url, str(tmp_path / "out"), tile="T")
        clean = run_product_on_cube("lst", url, str(tmp_path / "clean"), tile="T")
    assert (rerun.status, rerun.steps) == ("appended", 1)
    appended = xr.open_zarr(rerun.store, consolidated=True).load()
    fresh = xr.open_zarr(clean.store, consolidated=True).load()
    assert appended.sizes["time"] == fresh.sizes["time"] == 5
    for name in fresh.data_vars:
        np.testing.assert_array_equal(appended[name].values, fresh[name].values, err_msg=name)


@pytest.mark.parametrize("product", ["flood", "lst"])
def test_blocks_on_a_dask_cluster_write_the_same_bytes(cube_url, tmp_path, monkeypatch, product):
    """Groups of blocks sharing output chunks run as tasks on the workers (which open the
    cube themselves): the store has the in-process bytes. LST carries its scene statistic
    (the cloud screen's T_low per date) and its Fmask halo to the workers."""
    from distributed import Client, LocalCluster, get_task_stream

    monkeypatch.setattr(product_stage, "OUTPUT_CHUNK", 32)  # 70 x 60 px: 3 x 2 chunk groups

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        local = run_product_on_cube(
            product, cube_url, str(tmp_path / "local"), tile="T", block_memory_bytes=2**15
        )
        with (
            LocalCluster(
                n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
            ) as cluster,
            Client(cluster) as client,
        ):
            # the task stream records every task the workers ran; the scheduler itself may
            # already have forgotten finished tasks when asked afterwards (flaky count of 0)
            with get_task_stream(client) as stream:
                remote = run_product_on_cube(
                    product,
                    cube_url,
                    str(tmp_path / "dask"),
                    tile="T",
                    block_memory_bytes=2**15,
                    client=client,
                )
            keys = [str(task["key"]) for task in stream.data]
    assert remote.mode == local.mode == "space"
    if product == "flood":  # two passes: dates x chunks of the tile, then the 6 chunk groups
        inputs = product_stage.declared_inputs(
            select_inputs(open_cube(cube_url, dask=False), "flood"), flood.SPEC
        )
        detect, _, _ = product_stage.plan_two_pass(inputs, halo=1, budget_bytes=2**15)
        assert (
            sum("detect_group" in k for k in keys) == 10 * 6 == len(chunk_groups(detect, chunk=32))
        )
        assert sum("classify_group" in k for k in keys) == 6
    else:  # dates are independent: a task per date and chunk of the tile
        inputs = product_stage.declared_inputs(
            select_inputs(open_cube(cube_url, dask=False), "lst"), lst.SPEC
        )
        windows = product_stage.plan_date_windows(
            inputs, halo=35, budget_bytes=2**15, budget_halo=0
        )
        nt = inputs.sizes["time"]
        assert sum("run_group" in k for k in keys) == nt * 6 == len(chunk_groups(windows, chunk=32))
    assert _digest(remote.store) == _digest(local.store)


def _flood_cube(tmp_path: Path, nt: int = 24) -> tuple[str, xr.Dataset, int]:
    """A cube store of `nt` dates, flood's inputs, and a budget of 2.5 dates of the tile."""
    url = str(tmp_path / "cube.zarr")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _cube(nt=nt).to_zarr(storage.zarr_store(url), mode="w", consolidated=True, zarr_format=3)
    inputs = product_stage.declared_inputs(
        select_inputs(open_cube(url, dask=False), "flood"), flood.SPEC
    )
    return url, inputs, int(2.5 * product_stage.bytes_per_pixel(inputs, nt=1) * 70 * 60)


def _count_hooks(monkeypatch) -> dict[str, int]:
    calls = {"detect_dates": 0, "history_counts": 0, "classify_history": 0}
    for name in calls:
        original = getattr(flood, name)

        def counted(*args, _name=name, _original=original, **kwargs):
            calls[_name] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(flood, name, counted)
    return calls


@pytest.mark.parametrize(
    ("chunk", "blocks", "steps"),
    [(32, 6, 24), (64, 2, 11)],  # pass 2: every date at once; 3 reads of <= 11 dates
)
def test_flood_two_passes_split_dates_and_space_and_give_the_same_bytes(
    tmp_path, monkeypatch, chunk, blocks, steps
):
    """Pass 1 in groups of dates over the whole tile, pass 2 in output chunks of every
    date (read at once, or a few dates at a time with the reference from summed counts):
    the store has the single-pass blocked bytes and the whole-tile values."""
    monkeypatch.setattr(product_stage, "OUTPUT_CHUNK", chunk)
    url, inputs, budget = _flood_cube(tmp_path)
    detect, classify, per_read = product_stage.plan_two_pass(inputs, halo=1, budget_bytes=budget)
    assert [(b.time.start, b.time.stop) for b in detect[:2]] == [(0, 2), (2, 4)]
    assert len(detect) == 12 and all(b.y == slice(0, 70) for b in detect)
    assert len(classify) == blocks and all(b.time == slice(0, 24) for b in classify)
    assert per_read == steps
    assert product_stage.two_pass(flood, inputs, {})
    assert not product_stage.two_pass(flood, inputs, {"reference_time": ("2024-01", "2024-03")})
    assert not product_stage.two_pass(lst, inputs, {})

    calls = _count_hooks(monkeypatch)
    run = dict(tile="T", block_memory_bytes=budget)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        two = run_product_on_cube("flood", url, str(tmp_path / "two"), **run)
        reads = blocks * (1 if steps == 24 else 3)
        assert calls == {
            "detect_dates": 12,
            "history_counts": 0 if steps == 24 else reads,
            "classify_history": reads,
        }
        monkeypatch.setattr(product_stage, "two_pass", lambda *a, **k: False)
        one = run_product_on_cube("flood", url, str(tmp_path / "one"), **run)
    assert calls["detect_dates"] == 12  # the single pass runs no hook
    assert two.mode == one.mode == "space"
    assert _digest(two.store) == _digest(one.store)
    stored = xr.open_zarr(two.store, consolidated=True, mask_and_scale=False).load()
    whole = flood.run(inputs.load())
    for name in ("water", "water_probability", "diagnostic", "water_source"):
        np.testing.assert_array_equal(stored[name].values, whole[name].values, err_msg=name)
    assert set(np.unique(stored["water"].values)) >= {0, 1, 2}  # the reference joined dates


def test_a_two_pass_flood_run_killed_in_pass_2_reruns_to_the_same_bytes(tmp_path, monkeypatch):
    """Killed after pass 1 and part of pass 2 (no completion marker yet): the rerun
    recomputes and writes the bytes of an unbroken run, the whole-tile bytes."""
    url, _, budget = _flood_cube(tmp_path)
    original = flood.classify_history
    calls = []

    def killed(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("killed in pass 2")
        return original(*args, **kwargs)

    run = dict(tile="T", block_memory_bytes=budget // 4)  # pass 2: 70 x 60 px, 2 dates a read
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with monkeypatch.context() as m:
            m.setattr(flood, "classify_history", killed)
            with pytest.raises(RuntimeError, match="killed"):
                run_product_on_cube("flood", url, str(tmp_path / "out"), **run)
        rerun = run_product_on_cube("flood", url, str(tmp_path / "out"), **run)
        whole = run_product_on_cube(
            "flood", url, str(tmp_path / "whole"), tile="T", blocking="tile"
        )
    assert rerun.status == whole.status == "written" and rerun.mode == "space"
    assert _digest(rerun.store) == _digest(whole.store)


def test_a_multi_year_canopy_runs_year_by_year_with_the_whole_tile_bytes(tmp_path, monkeypatch):
    """Canopy's years are independent: blocks hold one year's dates (their side set by that
    year's length, not the series'), and the store equals the whole-tile run."""
    from tests.helpers.canopy_store_runs import data_files, write_ndvi_cube

    url = str(tmp_path / "cube.zarr")
    write_ndvi_cube(url, dates=80, ny=48, nx=40)  # 2024-01-01 .. 2025-02-04, 5 days apart
    planned: list = []
    real = product_stage.per_year_blocks

    def spy(*args, **kwargs):
        planned.extend(real(*args, **kwargs) or [])
        return planned

    monkeypatch.setattr(product_stage, "per_year_blocks", spy)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        whole = run_product_on_cube(
            "canopy", url, str(tmp_path / "whole"), tile="T", blocking="tile"
        )
        blocked = run_product_on_cube(
            "canopy", url, str(tmp_path / "blocked"), tile="T", block_memory_bytes=2**16
        )
    assert (whole.mode, blocked.mode, blocked.steps) == ("tile", "space", 2)
    assert {b.year for b in planned} == {0, 1}
    assert {(b.time.start, b.time.stop) for b in planned} == {(0, 74), (74, 80)}
    assert len(planned) > 2  # several spatial blocks per year
    assert data_files(blocked.store) == data_files(whole.store)
