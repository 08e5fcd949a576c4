"""Scale-out: the Dask path writes the same bytes as the in-process engine, on file:// and s3://."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
import xarray as xr

from geoproc.dev.synthetic_cube import write_synthetic_cube
from geoproc.inference.dask_runner import run_inference_dask
from geoproc.inference.device import DeviceOptions
from geoproc.inference.engine import EngineOptions, run_inference
from geoproc.inference.kernel import ModelKernel
from geoproc.inference.registry import find_card
from tests.helpers.store_bytes import store_bytes

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
OPTIONS = EngineOptions(batch_memory_bytes=600_000)


@pytest.fixture(scope="module")
def cube_url(tmp_path_factory) -> str:
    url = str(tmp_path_factory.mktemp("cube") / "cube.zarr")
    write_synthetic_cube(url, nt=2, ny=70, nx=64, chunks=(1, 32, 32), seed=5)
    return url


def _run_on_cluster(cube_url: str, out: str, kernel, *, processes: bool) -> tuple:
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=processes, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        stats = run_inference_dask(cube_url, kernel, out, options=OPTIONS, client=client)
        loads = client.run(_cached_models)
    return stats, loads


def _kernel() -> ModelKernel:
    # oneDNN splits reductions by thread count, so bytes match for equal torch threads
    threads = DeviceOptions(threads=torch.get_num_threads())
    return ModelKernel(find_card("tiny-fcn"), device=threads)


def test_dask_distributed_equals_in_process_bytes(cube_url, tmp_path):
    kernel = _kernel()
    local, dist = str(tmp_path / "local.zarr"), str(tmp_path / "dask.zarr")
    run_inference(cube_url, kernel, local, options=OPTIONS)
    stats, _ = _run_on_cluster(cube_url, dist, kernel, processes=False)
    assert stats.chunks_written == 2 * 3 * 2
    assert store_bytes(dist) == store_bytes(local)
    rerun = run_inference_dask(cube_url, kernel, dist, options=OPTIONS)
    assert rerun.chunks_written == 0 and rerun.chunks_skipped == 12


def test_kernel_pickles_as_a_reference_and_reloads_from_the_cache():
    kernel = _kernel()
    batch = np.random.default_rng(0).uniform(0, 0.3, (2, 6, 20, 20)).astype(np.float32)
    expected = kernel(batch, seed=0)
    blob = pickle.dumps(kernel)
    assert len(blob) < 20_000  # the card, not the tensors
    clone = pickle.loads(blob)
    assert clone._module is None
    got = clone(batch, seed=0)
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name])
    from geoproc.inference import registry

    assert clone._module is registry.load_from_card(clone.card).module  # one model per process


@pytest.mark.slow
def test_dask_worker_processes_equal_in_process_bytes(cube_url, tmp_path):
    kernel = _kernel()
    local, dist = str(tmp_path / "local.zarr"), str(tmp_path / "dask.zarr")
    run_inference(cube_url, kernel, local, options=OPTIONS)
    stats, loads = _run_on_cluster(cube_url, dist, kernel, processes=True)
    assert stats.chunks_written == 12
    assert all(n <= 1 for n in loads.values()) and sum(loads.values()) >= 1
    assert store_bytes(dist) == store_bytes(local)


def _cached_models() -> int:
    from geoproc.inference import registry

    return len(registry._CACHE)


@pytest.mark.integration
def test_dask_on_s3_store_equals_local(cube_url, tmp_path, s3_bucket):
    kernel = ModelKernel(find_card("tiny-fcn"))
    local = str(tmp_path / "local.zarr")
    run_inference(cube_url, kernel, local, options=OPTIONS)
    s3_cube = f"s3://{s3_bucket}/cube.zarr"
    from geoproc import zarr_layout

    copy = zarr_layout.with_compressor(zarr_layout.gdal_readable(xr.open_zarr(cube_url).load()))
    copy.to_zarr(_store(s3_cube), mode="w", **zarr_layout.to_zarr_kwargs())
    s3_out = f"s3://{s3_bucket}/product.zarr"
    stats = run_inference_dask(s3_cube, kernel, s3_out, options=OPTIONS)  # threaded scheduler
    assert stats.chunks_written == 12
    remote = xr.open_zarr(_store(s3_out), mask_and_scale=False)
    here = xr.open_zarr(local, mask_and_scale=False)
    for name in ("water_probability", "surface_class"):
        np.testing.assert_array_equal(remote[name].values, here[name].values)


def _store(url: str):
    from geoproc.storage import zarr_store

    return zarr_store(url)
