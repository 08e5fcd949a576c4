"""LST in spatial blocks with the residual-cloud screen on: the scene's T_low per date comes
from exact value counts merged over the blocks, so the blocked store has the whole-tile
bytes; the percentile from counts is NumPy's to the bit."""

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
from geoproc.product_runner import open_cube, run_product_on_cube, select_inputs
from geoproc.products import lst, stage_blocking
from geoproc.products.lst.cloud_screen import CloudScreen, percentile_from_counts, scene_t_low

OPTICAL = ("blue", "green", "red", "nir08", "swir16", "swir22")
BUDGET = 2**15
"""Small enough for many spatial blocks on the test cube."""


def _cloudy_cube(nt: int = 6, ny: int = 70, nx: int = 60, seed: int = 5) -> xr.Dataset:
    """L30 steps with Fmask clouds, clouds Fmask missed (bright, cold, clear in Fmask), BT
    quantised to 0.01 K as from int16 counts, and one date with too little clear land."""
    ds = synthetic_cube(nt, ny, nx, bands=OPTICAL, chunks=(1, 32, 32), seed=seed)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:ny, 0:nx]
    # Warmer to the east: each block's own percentile would differ from the scene's.
    bt = np.round(280 + 20 * xx / nx + rng.normal(0, 1.5, (nt, ny, nx)), 2)
    fmask = np.zeros((nt, ny, nx), "u1")
    for t in range(nt):
        cy, cx = rng.uniform(0, ny), rng.uniform(0, nx)
        fmask[t][(yy - cy) ** 2 + (xx - cx) ** 2 < 36] = 1 << 1  # a cloud Fmask found
        missed = (yy - rng.uniform(0, ny)) ** 2 + (xx - rng.uniform(0, nx)) ** 2 < 49
        for band, value in zip(OPTICAL, (0.4, 0.41, 0.38, 0.42, 0.36, 0.3), strict=True):
            ds[band].values[t][missed] = value
        bt[t][missed] = np.round(rng.uniform(270, 295, int(missed.sum())), 2)
    sparse = np.ones((ny, nx), bool)
    sparse.flat[rng.choice(ny * nx, 60, replace=False)] = False
    ds["red"].values[2][sparse] = np.nan  # date 2: 60 clear-land pixels, no test
    ds["lwir11"] = (("time", "y", "x"), bt.astype("f4"))
    ds["fmask"] = (("time", "y", "x"), fmask)
    for name in ("lwir11", "fmask"):
        ds[name].encoding = {"chunks": (1, 32, 32)}
    ds = ds.assign_coords(
        time=pd.date_range("2024-01-05", periods=nt, freq="8D").values,
        platform=("time", np.array(["L30"] * nt).astype(str)),
    )
    ds["time_complete"] = ("time", np.ones(nt, bool))
    ds.attrs["geoproc:source_items"] = [[f"item-{t}"] for t in range(nt)]
    return ds


@pytest.fixture
def cube_url(tmp_path: Path) -> str:
    url = str(tmp_path / "cube.zarr")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _cloudy_cube().to_zarr(storage.zarr_store(url), mode="w", consolidated=True, zarr_format=3)
    return url


def _digest(root: str) -> dict[str, str]:
    base = Path(root)
    return {
        str(p.relative_to(base)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(base.rglob("*"))
        if p.is_file()
    }


def test_blocked_lst_with_the_cloud_screen_has_the_whole_tile_bytes(cube_url, tmp_path):
    inputs = product_stage.declared_inputs(
        select_inputs(open_cube(cube_url, dask=False), "lst"), lst.SPEC
    )
    halo = product_stage.block_halo(lst, inputs, {})
    assert halo == 35  # 1000 m of near-cloud QA on a 30 m grid, plus one
    assert len(product_stage.plan_blocks(inputs, mode="space", halo=0, budget_bytes=BUDGET)) > 4
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        whole = run_product_on_cube(
            "lst", cube_url, str(tmp_path / "whole"), tile="T", blocking="tile"
        )
        dated = run_product_on_cube(
            "lst", cube_url, str(tmp_path / "time"), tile="T", blocking="time"
        )
        blocked = run_product_on_cube(
            "lst", cube_url, str(tmp_path / "blocked"), tile="T", block_memory_bytes=BUDGET
        )
    assert (whole.mode, dated.mode, blocked.mode) == ("tile", "time", "space")
    qa = xr.open_zarr(whole.store, consolidated=True)["lst_qa"].values
    assert (qa & lst.QA_RESIDUAL_CLOUD).any(axis=(1, 2)).sum() >= 4  # the screen found clouds
    assert not (qa[2] & lst.QA_RESIDUAL_CLOUD).any()  # too little clear land: not tested
    assert (qa & lst.QA_NEAR_CLOUD).any()
    a = _digest(whole.store)
    assert len(a) > 15
    assert _digest(blocked.store) == a == _digest(dated.store)
    attrs = xr.open_zarr(blocked.store, consolidated=True).attrs
    assert "t_low" not in attrs["parameters"] and "t_low" not in attrs["geoproc:parameters"]


def test_scene_statistics_give_the_whole_scene_t_low(cube_url):
    inputs = product_stage.declared_inputs(
        select_inputs(open_cube(cube_url, dask=False), "lst"), lst.SPEC
    ).load()
    blocked = product_stage.scene_options(lst, inputs, {}, BUDGET)["cloud_screen_t_low"]
    everything = (slice(0, inputs.sizes["time"]), inputs)
    whole = lst.scene_statistics(inputs, iter([everything]))["cloud_screen_t_low"]
    windows = product_stage.plan_date_windows(inputs, halo=35, budget_bytes=BUDGET)
    assert {b.time.stop - b.time.start for b in windows} == {1}  # a date per window
    dated = product_stage.scene_options(lst, inputs, {}, BUDGET, windows)["cloud_screen_t_low"]
    assert np.isnan(blocked[2]) and np.isfinite(np.delete(blocked, 2)).all()
    np.testing.assert_array_equal(blocked, whole)
    np.testing.assert_array_equal(dated, whole)


def test_near_cloud_uncertainty_falls_back_to_date_groups():
    screen = {"near_cloud_sigma_k": 5.0}
    assert stage_blocking(lst, ("lwir11", "fmask"), {}) == "space"
    assert stage_blocking(lst, ("lwir11",), {"cloud_screen": False}) == "space"
    assert stage_blocking(lst, ("lwir11",), {"cloud_screen": screen}) == "time"
    assert stage_blocking(lst, ("lwir11",), {"cloud_screen": CloudScreen(**screen)}) == "time"
    params = lst.LSTParams(cloud_screen=CloudScreen(**screen))
    assert stage_blocking(lst, ("lwir11",), {"params": params}) == "time"


def test_lst_appends_new_dates_after_a_spatially_blocked_run(tmp_path):
    cube = _cloudy_cube(nt=6)
    url = str(tmp_path / "cube.zarr")
    complete = np.ones(6, bool)
    complete[5:] = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cube.assign(time_complete=("time", complete)).to_zarr(
            storage.zarr_store(url), mode="w", consolidated=True, zarr_format=3
        )
        first = run_product_on_cube(
            "lst", url, str(tmp_path / "out"), tile="T", block_memory_bytes=BUDGET
        )
        xr.Dataset({"time_complete": ("time", np.ones(6, bool))}).to_zarr(
            storage.zarr_store(url), mode="r+", region={"time": slice(0, 6)}
        )
        second = run_product_on_cube(
            "lst", url, str(tmp_path / "out"), tile="T", block_memory_bytes=BUDGET
        )
        clean = run_product_on_cube("lst", url, str(tmp_path / "clean"), tile="T", blocking="tile")
    assert (first.mode, first.steps) == ("space", 5)
    assert (second.status, second.steps) == ("appended", 1)
    appended = xr.open_zarr(second.store, consolidated=True).load()
    fresh = xr.open_zarr(clean.store, consolidated=True).load()
    for name in fresh.data_vars:
        np.testing.assert_array_equal(appended[name].values, fresh[name].values, err_msg=name)


@pytest.mark.parametrize("seed", range(40))
def test_percentile_from_counts_is_numpys_to_the_bit(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.choice([1, 2, 3, 5, 17, 100, 101, 1000, 4099]))
    if seed % 3 == 0:
        values = rng.normal(290, 5, n)  # continuous: counts of 1
    elif seed % 3 == 1:
        values = np.round(rng.normal(290, 5, n), 2)  # quantised: ties
    else:
        values = rng.choice([250.5, 271.25, 290.0], n)  # few distinct values, many ties
    q = float(rng.choice([17.5, 0.1, 1.0, 25.0, 33.3, 49.9, rng.uniform(0, 50)]))
    u, c = np.unique(values, return_counts=True)
    order = rng.permutation(u.size)  # the order of merged counts must not matter
    got = percentile_from_counts(u[order], c[order], q)
    want = float(np.percentile(values, q))
    assert got == want or (np.isnan(got) and np.isnan(want)), (n, q, got, want)


def test_percentile_from_counts_of_merged_blocks():
    rng = np.random.default_rng(7)
    values = np.round(rng.normal(285, 4, 5000), 1)
    parts = np.array_split(rng.permutation(values), 7)
    merged_u, merged_c = np.array([]), np.array([], dtype="int64")
    for part in parts:
        u, c = np.unique(part, return_counts=True)
        allu = np.concatenate([merged_u, u])
        allc = np.concatenate([merged_c, c])
        merged_u, inverse = np.unique(allu, return_inverse=True)
        merged_c = np.bincount(inverse, weights=allc).astype("int64")
    assert merged_c.sum() == values.size
    assert percentile_from_counts(merged_u, merged_c, 17.5) == float(np.percentile(values, 17.5))


def test_min_clear_land_counts_the_whole_scene():
    screen = CloudScreen(min_clear_land=100)
    assert np.isnan(scene_t_low(np.array([280.0, 290.0]), np.array([50, 49]), screen=screen))
    values = np.repeat([280.0, 290.0], [50, 50])
    got = scene_t_low(np.array([280.0, 290.0]), np.array([50, 50]), screen=screen)
    assert got == float(np.percentile(values, 17.5))


def test_landsat_c2_cubes_get_the_near_cloud_halo_from_fmask():
    """Landsat C2 L2 cubes carry `st_temperature`, not `lwir11`: the halo still follows Fmask."""
    import numpy as np
    import xarray as xr

    from geoproc.products import lst

    y = 5_300_000.0 - 30.0 * np.arange(8)
    x = 700_000.0 + 30.0 * np.arange(8)
    grid = (("time", "y", "x"), np.zeros((1, 8, 8), np.float32))
    cube = xr.Dataset(
        {"st_temperature": grid, "fmask": (grid[0], np.zeros((1, 8, 8), np.uint8))},
        coords={"y": y, "x": x},
    )
    with_lwir = cube.rename(st_temperature="lwir11")
    assert lst.block_halo(cube) == lst.block_halo(with_lwir) > 0


def test_a_per_pixel_atmosphere_uniform_inside_one_block_is_still_per_pixel(tmp_path):
    """Whether the atmosphere is one value per scene (then its scene-wide spread enters the
    uncertainty) is decided over the whole scene, not per block: a transmittance map that is
    uniform on the west blocks but varies to the east gives the whole-tile bytes."""
    ds = _cloudy_cube()
    nt, ny, nx = ds.sizes["time"], ds.sizes["y"], ds.sizes["x"]
    xx = np.broadcast_to(np.arange(nx), (nt, ny, nx))
    varying = np.where(xx < 40, 0.0, (xx - 40) * 0.002)
    for name, base in (("transmittance", 0.8), ("upwelling", 1.2), ("downwelling", 2.0)):
        ds[f"atmos_{name}_lwir11"] = (("time", "y", "x"), (base + varying).astype("f4"))
        ds[f"atmos_{name}_lwir11"].encoding = {"chunks": (1, 32, 32)}
    url = str(tmp_path / "cube.zarr")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.to_zarr(storage.zarr_store(url), mode="w", consolidated=True, zarr_format=3)
        whole = run_product_on_cube("lst", url, str(tmp_path / "whole"), tile="T", blocking="tile")
        blocked = run_product_on_cube(
            "lst", url, str(tmp_path / "blocked"), tile="T", block_memory_bytes=BUDGET
        )
    assert blocked.mode == "space"
    assert _digest(blocked.store) == _digest(whole.store)
