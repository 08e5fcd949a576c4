"""The chunked engine: tiled == whole-image inference, masks kept, resumable, same bytes."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr

from geoproc.dev.synthetic_cube import synthetic_cube, write_synthetic_cube
from geoproc.errors import StoreError, UsageError
from geoproc.inference.device import DeviceOptions
from geoproc.inference.engine import EngineOptions, batch_keys, plan_batches, run_inference
from geoproc.inference.kernel import ArrayKernel, ModelKernel
from geoproc.inference.markers import MARKER_DIR
from geoproc.inference.registry import find_card, load_model
from geoproc.products.base import VariableSpec
from tests.helpers.paths import REPO_ROOT
from tests.helpers.store_bytes import store_bytes

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

SMALL_BATCHES = EngineOptions(batch_memory_bytes=600_000, cache_bytes=2_000_000)


@pytest.fixture(scope="module")
def cube_url(tmp_path_factory) -> str:
    # 96 x 80 px in 32 px chunks: the last column of chunks is 16 px wide, so windows
    # cross chunk edges inside the image and are clipped at all four tile edges.
    url = str(tmp_path_factory.mktemp("cube") / "cube.zarr")
    write_synthetic_cube(url, nt=2, ny=96, nx=80, chunks=(1, 32, 32), seed=3)
    return url


def _whole_image(cube: xr.Dataset, bands, t: int) -> np.ndarray:
    """Reference: the model on the whole scene at once, NaN filled as the kernel does."""
    model = load_model("tiny-fcn")
    x = np.stack([cube[b].isel(time=t).values for b in bands])[None].astype(np.float32)
    x = np.nan_to_num(model.card.normalise(x), nan=0.0)
    with torch.inference_mode():
        return model.module(torch.from_numpy(x)).numpy()[0]


@pytest.mark.parametrize(
    "options",
    [SMALL_BATCHES, EngineOptions(batch_memory_bytes=4_000_000, window_chunks=2)],
    ids=["one-chunk-windows", "2x2-chunk-windows"],
)
def test_tiled_inference_equals_whole_image_and_keeps_masks(cube_url, tmp_path, options):
    kernel = ModelKernel(find_card("tiny-fcn"))
    out = str(tmp_path / "out.zarr")
    stats = run_inference(cube_url, kernel, out, options=options)
    assert stats.chunks_written == 2 * 3 * 3 and stats.batches >= 2  # several batches
    cube = xr.open_zarr(cube_url)
    product = xr.open_zarr(out, mask_and_scale=False)
    assert product.sizes == {"time": 2, "y": 96, "x": 80}
    np.testing.assert_array_equal(product.y.values, cube.y.values)
    np.testing.assert_array_equal(product.x.values, cube.x.values)
    assert product.water_probability.attrs["grid_mapping"] == "spatial_ref"
    assert product.attrs["model_sha256"] == kernel.card.sha256
    assert product.rio.crs.to_epsg() == 32633
    for t in range(2):
        ref = _whole_image(cube, kernel.inputs, t)
        masked = np.isnan(np.stack([cube[b].isel(time=t).values for b in kernel.inputs])).any(0)
        assert 0.05 < masked.mean() < 0.5  # the test sees both masked and clear pixels
        prob = product.water_probability.isel(time=t).values
        cls = product.surface_class.isel(time=t).values
        assert np.isnan(prob[masked]).all() and (cls[masked] == 255).all()
        diff = np.abs(prob[~masked] - ref[0][~masked])
        assert diff.max() <= 1e-5
        gap = np.abs(ref[1] - ref[2])
        sure = ~masked & (gap > 1e-4)
        np.testing.assert_array_equal(cls[sure], (ref[2] > ref[1])[sure].astype(np.uint8))


def test_halo_smaller_than_receptive_field_shows_seams(cube_url, tmp_path):
    """The equality above is not automatic: a too-small halo breaks it at chunk edges."""
    card = find_card("tiny-fcn")
    kernel = ModelKernel(card)
    kernel.halo = 1
    out = str(tmp_path / "seams.zarr")
    run_inference(cube_url, kernel, out, options=SMALL_BATCHES)
    cube = xr.open_zarr(cube_url)
    ref = _whole_image(cube, kernel.inputs, 0)[0]
    prob = xr.open_zarr(out).water_probability.isel(time=0).values
    diff = np.abs(prob - ref)
    assert np.nanmax(diff[:, 30:34]) > 1e-4  # chunk edge at x = 32
    assert np.nanmax(diff[40:56, 40:56]) <= 1e-5  # chunk centres stay exact


def _ndvi(batch: np.ndarray) -> dict[str, np.ndarray]:
    red, nir = batch[:, 0], batch[:, 1]
    return {"ndvi": (nir - red) / (nir + red)}


NDVI = ArrayKernel(
    _ndvi,
    name="ndvi",
    version="1",
    inputs=("red", "nir08"),
    outputs=(VariableSpec("ndvi", "float32", "1", "NDVI", fill_value=float("nan")),),
)


def test_numpy_kernel_and_series_kernel(cube_url, tmp_path):
    out = str(tmp_path / "ndvi.zarr")
    run_inference(cube_url, NDVI, out, options=SMALL_BATCHES)
    cube = xr.open_zarr(cube_url)
    expected = (cube.nir08 - cube.red) / (cube.nir08 + cube.red)
    np.testing.assert_array_equal(xr.open_zarr(out).ndvi.values, expected.values)

    def clear_count(batch):
        return {"clear_count": np.isfinite(batch).all(axis=1).sum(axis=1)}

    series = ArrayKernel(
        clear_count,
        name="count",
        version="1",
        inputs=("red", "nir08"),
        outputs=(VariableSpec("clear_count", "uint8", "1", "clear observations", fill_value=0),),
        temporal="series",
    )
    out2 = str(tmp_path / "count.zarr")
    run_inference(cube_url, series, out2, options=SMALL_BATCHES)
    counts = xr.open_zarr(out2, mask_and_scale=False).clear_count
    assert counts.dims == ("y", "x")
    expected_counts = (cube.red.notnull() & cube.nir08.notnull()).sum("time").values
    np.testing.assert_array_equal(counts.values, expected_counts)


def test_batches_respect_the_memory_budget_and_cover_every_chunk(cube_url):
    from geoproc.inference.engine import cube_grid, open_cube

    kernel = ModelKernel(find_card("tiny-fcn"))
    grid = cube_grid(open_cube(cube_url), kernel)
    for budget in (1, 600_000, 10**9):
        batches = plan_batches(grid, kernel, EngineOptions(batch_memory_bytes=budget))
        keys = [k for b in batches for k in batch_keys(b, grid)]
        assert sorted(keys) == sorted(set(keys)) and len(keys) == 18
        for b in batches:
            assert len({t.window_shape for t in b}) == 1
            h, w = b[0].window_shape
            assert len(b) == 1 or len(b) * h * w * kernel.bytes_per_pixel <= budget
    assert len(plan_batches(grid, kernel, EngineOptions(batch_memory_bytes=1))) == 18


def test_default_plan_pipelines_equal_windows():
    """A default run never makes a tile one serial read -> compute -> write (one window)
    nor a big window plus thin strips: >= 2 x 2 equal windows, >= 4 batches."""
    from geoproc.inference.engine import Grid, window_chunks

    kernel = ModelKernel(find_card("tiny-fcn"))  # halo 4
    for side, k, shape in ((512, 1, (260, 260)), (1024, 2, (516, 516))):
        for budget_mib in (128, 256, 512):
            options = EngineOptions(batch_memory_bytes=budget_mib << 20)
            grid = Grid(nt=1, ny=side, nx=side, cy=256, cx=256)
            batches = plan_batches(grid, kernel, options)
            assert window_chunks(grid, kernel, options) == k
            assert [len(b) for b in batches] == [1, 1, 1, 1]
            assert {b[0].window_shape for b in batches} == {shape}
    # a 10 x 10 chunk tile with room for 8-chunk windows gets two 5-chunk windows a side
    grid = Grid(nt=1, ny=2560, nx=2560, cy=256, cx=256)
    assert window_chunks(grid, kernel, EngineOptions(batch_memory_bytes=4 << 30)) == 5


def test_bad_inputs_and_foreign_stores_are_refused(cube_url, tmp_path):
    sar = ArrayKernel(
        lambda b: {"x": b[:, 0]},
        name="sar",
        version="1",
        inputs=("vv",),
        outputs=(VariableSpec("x", "float32", "1", "x", fill_value=float("nan")),),
    )
    with pytest.raises(UsageError, match="vv"):
        run_inference(cube_url, sar, str(tmp_path / "sar.zarr"))
    with pytest.raises(StoreError, match="cube store"):
        run_inference(str(tmp_path / "missing.zarr"), NDVI, str(tmp_path / "x.zarr"))
    # the cube itself is a Zarr store this run did not make: never clobber it
    with pytest.raises(StoreError, match="new output URL"):
        run_inference(cube_url, NDVI, cube_url)
    out = str(tmp_path / "a.zarr")
    run_inference(cube_url, NDVI, out)
    with pytest.raises(StoreError, match="another model"):
        run_inference(cube_url, ModelKernel(find_card("tiny-fcn")), out)


_CHILD = textwrap.dedent(
    """
    import sys, time
    from geoproc.inference.engine import EngineOptions, run_inference
    from geoproc.inference.device import DeviceOptions
    from geoproc.inference.kernel import ModelKernel
    from geoproc.inference.registry import find_card

    class Slow(ModelKernel):
        def __call__(self, batch, *, seed):
            time.sleep(0.15)
            return super().__call__(batch, seed=seed)

    opts = EngineOptions(batch_memory_bytes=600_000, cache_bytes=2_000_000)
    kernel = Slow(find_card("tiny-fcn"), device=DeviceOptions(threads=1))
    run_inference(sys.argv[1], kernel, sys.argv[2], options=opts)
    """
)


@pytest.fixture
def restore_torch_threads():
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_killed_run_resumed_gives_the_same_bytes_as_a_clean_run(
    cube_url, tmp_path, restore_torch_threads
):
    # same thread count as the child: oneDNN's float sums depend on it, and earlier tests in
    # this process may have changed torch's default
    kernel = ModelKernel(find_card("tiny-fcn"), device=DeviceOptions(threads=1))
    clean, resumed = str(tmp_path / "clean.zarr"), str(tmp_path / "resumed.zarr")
    run_inference(cube_url, kernel, clean, options=SMALL_BATCHES)

    markers = Path(resumed) / MARKER_DIR
    for _attempt in range(3):  # on a loaded machine the child can finish before the kill lands
        shutil.rmtree(resumed, ignore_errors=True)
        proc = subprocess.Popen(
            [sys.executable, "-W", "ignore", "-c", _CHILD, cube_url, resumed],
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if markers.is_dir() and len(list(markers.iterdir())) >= 5:  # template + >= 4 chunks
                break
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        finished = len(list(markers.iterdir())) - 1
        if finished < 18:
            break
    assert 4 <= finished < 18, "the child must be killed mid-run"

    stats = run_inference(cube_url, kernel, resumed, options=SMALL_BATCHES)
    assert stats.chunks_skipped >= finished - 2  # at most the last batch is redone
    assert stats.chunks_written == 18 - stats.chunks_skipped
    assert store_bytes(resumed) == store_bytes(clean)
    assert len(store_bytes(clean)) > 10


def test_rerun_skips_everything_and_overwrite_recomputes(cube_url, tmp_path):
    out = str(tmp_path / "o.zarr")
    first = run_inference(cube_url, NDVI, out)
    before = store_bytes(out)
    again = run_inference(cube_url, NDVI, out)
    assert again.chunks_written == 0 and again.chunks_skipped == first.chunks_written
    redo = run_inference(cube_url, NDVI, out, options=EngineOptions(overwrite=True))
    assert redo.chunks_written == first.chunks_written
    assert store_bytes(out) == before


def test_synthetic_cube_masks_are_nan():
    ds = synthetic_cube(nt=1, ny=20, nx=20, masked_fraction=0.1, seed=1)
    assert set(ds.data_vars) >= {"red", "nir08"} and ds.rio.crs.to_epsg() == 32633
    assert np.isnan(ds.red.values).any() and np.isfinite(ds.red.values).any()


def test_new_cube_dates_extend_the_product_and_match_a_clean_run(tmp_path):
    from geoproc.storage import zarr_store

    full = synthetic_cube(nt=3, ny=40, nx=40, chunks=(1, 16, 16), seed=11)
    cube = str(tmp_path / "cube.zarr")
    full.isel(time=slice(0, 2)).to_zarr(zarr_store(cube), mode="w")
    kernel = ModelKernel(find_card("tiny-fcn"))
    out = str(tmp_path / "grown.zarr")
    first = run_inference(cube, kernel, out, options=SMALL_BATCHES)
    assert first.chunks_written == 2 * 9
    full.isel(time=slice(2, 3)).to_zarr(zarr_store(cube), append_dim="time")
    second = run_inference(cube, kernel, out, options=SMALL_BATCHES)
    assert second.chunks_written == 9 and second.chunks_skipped == 18
    grown = xr.open_zarr(out)
    np.testing.assert_array_equal(grown.time.values, full.time.values)
    clean = str(tmp_path / "clean.zarr")
    run_inference(cube, kernel, clean, options=SMALL_BATCHES)
    grown_bytes, clean_bytes = store_bytes(out), store_bytes(clean)
    chunks = [  # chunk objects in either Zarr format (v2 "0.1.2", v3 "c/0/1/2")
        k
        for k in clean_bytes
        if k.startswith(("water_probability/", "surface_class/"))
        and not k.rsplit("/", 1)[-1].startswith((".", "zarr.json"))
    ]
    assert len(chunks) >= 20
    assert {k: grown_bytes.get(k) for k in chunks} == {k: clean_bytes[k] for k in chunks}
    np.testing.assert_array_equal(
        grown.water_probability.values, xr.open_zarr(clean).water_probability.values
    )
