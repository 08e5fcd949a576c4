"""The same engine as Dask tasks, so a cluster spreads the chunks of a tile.

Why: one task per batch of the engine's fixed plan means a Dask run computes exactly
the batches an in-process run computes, so both write the same bytes, and a resumed
Dask run skips finished chunks the same way. The kernel travels as a small reference
(card + source); each worker process builds each model once and keeps it in the
registry cache (keyed by name, version and sha256), on its own GPU when it has one.
Stores are opened by URL inside the task, so file:// and s3:// work alike.
"""

from __future__ import annotations

import threading
import time
from functools import lru_cache

import dask
import xarray as xr

from geoproc.inference.blending import Blend
from geoproc.inference.engine import (
    ChunkWriter,
    EngineOptions,
    Grid,
    RunStats,
    WindowReader,
    WindowTask,
    batch_seed,
    blend_batch_bytes,
    compute_batch,
    open_cube,
    plan_run,
)
from geoproc.inference.kernel import Kernel

_LOCK = threading.Lock()


def run_inference_dask(
    cube_url: str,
    kernel: Kernel,
    output_url: str,
    *,
    options: EngineOptions | None = None,
    client=None,
) -> RunStats:
    """Run the engine with one Dask task per batch (``client`` or the current scheduler)."""
    options = options or EngineOptions()
    started = time.perf_counter()
    plan = plan_run(cube_url, kernel, output_url, options)
    grid, done, todo = plan.grid, plan.done, plan.todo
    tasks = [
        dask.delayed(_run_batch, pure=False)(
            cube_url,
            output_url,
            kernel,
            grid,
            batch,
            batch_seed(batch, options.seed),
            done,
            plan.blend,
            blend_batch_bytes(options),
        )  # fmt: skip
        for batch in todo
    ]
    if client is not None:
        written = client.gather(client.compute(tasks))
    else:
        (written,) = dask.compute(tasks)
    stats = RunStats(chunks_total=plan.chunks_total, chunks_written=sum(written), batches=len(todo))
    stats.chunks_skipped = plan.chunks_skipped
    stats.seconds_total = time.perf_counter() - started
    return stats


def _run_batch(
    cube_url: str,
    output_url: str,
    kernel: Kernel,
    grid: Grid,
    batch: list[WindowTask],
    seed: int,
    done: set[str],
    blend: Blend | None = None,
    batch_bytes: int = 512 * 1024 * 1024,
) -> int:
    """One Dask task: read the batch's windows, run the kernel, write chunks + markers."""
    reader = WindowReader(_cube(cube_url), kernel.inputs, grid, cache_bytes=0)
    inputs = reader.batch(batch)
    with _LOCK:  # one forward pass at a time per process: one model per device
        crops = compute_batch(
            kernel, inputs, batch, seed=seed, blend=blend, batch_bytes=batch_bytes
        )
    writer = ChunkWriter(output_url, [s.name for s in kernel.outputs], grid)
    return sum(writer.write(task, data, skip=done) for task, data in zip(batch, crops, strict=True))


@lru_cache(maxsize=8)
def _cube(cube_url: str) -> xr.Dataset:
    return open_cube(cube_url)
