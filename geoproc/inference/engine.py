"""The chunked Zarr -> Zarr inference engine.

The engine cuts the tile into windows of k x k output chunks (k from the memory budget),
reads each window plus a halo straight from the cube store (only the chunks it touches,
through a small block cache), groups equal-shaped windows into batches sized to a memory
budget, runs the kernel, crops the halo and writes every chunk with a chunk-aligned
region write followed by its completion marker. This is the overlap-tile strategy
(Ronneberger et al. 2015, U-Net, section 3): with a halo >= the receptive-field radius
the cropped centre equals whole-image inference. Windows are truncated at the image
edge rather than padded, so edge pixels see the same zero padding a whole-image pass
gives them. Reading the next batch and writing the previous one run in threads while
the current batch computes.

The batch plan depends only on the grid, the kernel and the options, never on what is
already done, so a resumed run, a Dask run and a clean run compute identical batches
and write identical bytes (on CPU, for the same torch thread count).
"""

from __future__ import annotations

import json
import logging
import time
import zlib
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import dask.array as da
import numpy as np
import xarray as xr
import zarr

from geoproc import __version__
from geoproc.errors import StoreError, UsageError
from geoproc.inference._io import zarr_store
from geoproc.inference.blending import (
    DEFAULT_TILE,
    Blend,
    blend_block,
    make_blend,
    read_region,
)
from geoproc.inference.kernel import Kernel
from geoproc.inference.markers import TEMPLATE_KEY, ChunkMarkers
from geoproc.storage import remove_partial_writes

log = logging.getLogger(__name__)

_MiB = 1024 * 1024


@dataclass(frozen=True)
class EngineOptions:
    """Knobs of one inference run."""

    batch_memory_bytes: int = 512 * _MiB
    """Working-memory budget of one batch (inputs + activations, as the kernel estimates)."""
    cache_bytes: int | None = None
    """Decoded input blocks kept for neighbouring windows' halo reads. Default: the chunk
    rows one row of windows touches (k + 2 rows across the tile, every band), capped at
    64 MiB so peak memory stays flat in tile size (measured: +129/+193/+301 MiB working
    memory for 1k/2k/4k tiles uncapped, vs +144/+169 MiB for 1k/4k without a cache)."""
    window_chunks: int | None = None
    """Chunks per window side. Default: the largest square block of chunks whose window
    (with halo) fits the batch budget, capped at 8 and at half the tile's chunks a side,
    then evened out so the tile splits into >= 2 x 2 equal windows (``_pipelined_k``:
    reads and writes overlap compute only across batches). Larger windows waste less on halos and
    let convolution libraries work on bigger planes (measured ~1.4x per pixel on CPU for
    1024 px vs 264 px planes); the result does not depend on it when halo >= receptive
    field, up to float rounding."""
    prefetch: bool = True
    """Read the next batch and write the previous one in threads while computing."""
    seed: int = 0
    """Base seed for stochastic kernels; each batch derives its own from its first chunk."""
    overwrite: bool = False
    """Discard an existing product store instead of resuming it."""
    blend: str = "none"
    """``none``: each block is one window (block + halo), cropped (exact when the halo covers
    the receptive field). ``linear`` / ``cosine``: overlapping windows on one lattice,
    averaged with ramped weights, so models with a window-wide receptive field
    (transformers, global pooling) leave no seams (see ``blending.py``)."""
    tile: int | None = None
    """Blend window side (default: the card's ``geoproc:tile_size``, else 256 px)."""
    overlap: int | None = None
    """Blend overlap between neighbouring windows (default: max(2 * halo + 1, tile / 4))."""


@dataclass(frozen=True)
class Grid:
    """Shape and chunking of the cube, as read from the store."""

    nt: int
    ny: int
    nx: int
    cy: int
    cx: int


@dataclass(frozen=True)
class WindowTask:
    """A block of output chunks and the input window (block + halo, clipped to the image)."""

    t: int | None
    iy: tuple[int, int]
    """Chunk rows [start, stop) of the block."""
    ix: tuple[int, int]
    """Chunk columns [start, stop) of the block."""
    out_y: tuple[int, int]
    out_x: tuple[int, int]
    read_y: tuple[int, int]
    read_x: tuple[int, int]

    def chunks(self, grid: Grid) -> list[tuple[str, tuple[int, int], tuple[int, int]]]:
        """(marker key, y range, x range) of every output chunk in the block."""
        out = []
        for iy in range(*self.iy):
            for ix in range(*self.ix):
                key = f"{iy}.{ix}" if self.t is None else f"{self.t}.{iy}.{ix}"
                ys = (iy * grid.cy, min(grid.ny, (iy + 1) * grid.cy))
                xs = (ix * grid.cx, min(grid.nx, (ix + 1) * grid.cx))
                out.append((key, ys, xs))
        return out

    @property
    def key(self) -> str:
        """Marker key of the block's first chunk (seeds and logs)."""
        first = f"{self.iy[0]}.{self.ix[0]}"
        return first if self.t is None else f"{self.t}.{first}"

    @property
    def window_shape(self) -> tuple[int, int]:
        return (self.read_y[1] - self.read_y[0], self.read_x[1] - self.read_x[0])


ChunkTask = WindowTask  # the name used before windows could span several chunks


@dataclass
class RunStats:
    """What a run did (for logs, the run report and benchmarks)."""

    chunks_total: int = 0
    chunks_written: int = 0
    chunks_skipped: int = 0
    batches: int = 0
    pixels: int = 0
    seconds_read: float = 0.0
    seconds_compute: float = 0.0
    seconds_write: float = 0.0
    seconds_total: float = 0.0
    extra: dict = field(default_factory=dict)


def open_cube(cube_url: str) -> xr.Dataset:
    """Open a cube lazily without Dask, so slicing reads only the chunks it touches."""
    try:
        return xr.open_zarr(zarr_store(cube_url, read_only=True), chunks=None)
    except (FileNotFoundError, KeyError, ValueError) as exc:
        raise StoreError(
            f"cannot open cube store {cube_url!r} ({exc}); pass the URL of a cube built by geoproc"
        ) from None


def cube_grid(cube: xr.Dataset, kernel: Kernel, *, cube_url: str = "cube") -> Grid:
    """Check the cube has what the kernel reads and return its grid and chunking."""
    missing = [b for b in kernel.inputs if b not in cube.data_vars]
    if missing:
        raise UsageError(
            f"cube {cube_url!r} lacks bands {missing} that {kernel.name} needs "
            f"(it has {sorted(map(str, cube.data_vars))}); build the cube with those bands "
            "or choose another model"
        )
    var = cube[kernel.inputs[0]]
    if var.dims != ("time", "y", "x"):
        raise UsageError(
            f"cube {cube_url!r} variable {kernel.inputs[0]!r} has dims {var.dims}; "
            "the engine reads cubes with dims (time, y, x)"
        )
    chunks = var.encoding.get("chunks") or var.encoding.get("preferred_chunks")
    if isinstance(chunks, dict):
        chunks = (chunks.get("time", 1), chunks["y"], chunks["x"])
    if not chunks:
        chunks = (1, var.sizes["y"], var.sizes["x"])
    return Grid(
        nt=var.sizes["time"], ny=var.sizes["y"], nx=var.sizes["x"], cy=chunks[1], cx=chunks[2]
    )


def window_chunks(grid: Grid, kernel: Kernel, options: EngineOptions) -> int:
    """Chunks per window side: the option, or the largest block that fits the budget."""
    if options.window_chunks:
        return max(1, options.window_chunks)
    depth = 1 if kernel.temporal == "scene" else grid.nt
    margin, per_px, budget = kernel.halo, kernel.bytes_per_pixel, options.batch_memory_bytes
    if options.blend != "none":
        # a blended block holds its input region (up to one window beyond each edge) and
        # two float32 sums; the model's activations live in the window batches, which
        # get the other half of the budget (``blend_batch_bytes``)
        margin = options.tile or getattr(kernel, "tile_size", None) or DEFAULT_TILE
        per_px, budget = 4 * len(kernel.inputs) + 16, blend_batch_bytes(options)
    k = 1
    while k < 8:
        nxt = k + 1
        px = (nxt * grid.cy + 2 * margin) * (nxt * grid.cx + 2 * margin) * depth
        if px * per_px > budget:
            break
        if k * grid.cy >= grid.ny and k * grid.cx >= grid.nx:
            break
        k = nxt
    if options.blend != "none":
        return k
    return _pipelined_k(k, -(-grid.ny // grid.cy), -(-grid.nx // grid.cx))


def _pipelined_k(k: int, n_cy: int, n_cx: int) -> int:
    """Shrink the block so the tile splits into >= 2 x 2 equal blocks.

    Why: reading a batch, running it and writing it overlap only across batches, so a
    tile that is one window (or one big window plus thin edge strips, e.g. 3 + 1 chunks
    of 4) runs read -> compute -> write serially. Measured with ``geoproc bench infer``
    (notes in the commit): 512 px tiles as 4 windows of 260 px instead of one, 1024 px
    tiles as 4 windows of 516 px instead of 772 + 260 px strips.
    """
    n = max(n_cy, n_cx)
    if n >= 2:
        k = min(k, -(-n // 2))
    return max(1, -(-n // -(-n // k)))  # equal blocks: 4 chunks with k=3 -> k=2


def plan_batches(grid: Grid, kernel: Kernel, options: EngineOptions) -> list[list[WindowTask]]:
    """Every output chunk, in windows of k x k chunks, grouped into batches of equal
    window shape within the memory budget. Depends only on grid, kernel and options.

    With blending, a task is one block (its read window the union of the lattice windows
    that touch it) and a batch holds one block; the windows inside it are batched by
    ``blend_block``."""
    h = kernel.halo
    blend = run_blend(grid, kernel, options)
    k = window_chunks(grid, kernel, options)
    times: list[int | None] = list(range(grid.nt)) if kernel.temporal == "scene" else [None]
    t_depth = 1 if kernel.temporal == "scene" else grid.nt
    n_cy, n_cx = -(-grid.ny // grid.cy), -(-grid.nx // grid.cx)
    tasks = []
    for t in times:
        for by in range(0, n_cy, k):
            for bx in range(0, n_cx, k):
                iy, ix = (by, min(n_cy, by + k)), (bx, min(n_cx, bx + k))
                y0, x0 = iy[0] * grid.cy, ix[0] * grid.cx
                y1, x1 = min(grid.ny, iy[1] * grid.cy), min(grid.nx, ix[1] * grid.cx)
                if blend is not None:
                    ry, rx = read_region(blend, (y0, y1), (x0, x1), grid.ny, grid.nx)
                    tasks.append(WindowTask(t, iy, ix, (y0, y1), (x0, x1), ry, rx))
                    continue
                tasks.append(
                    WindowTask(
                        t=t,
                        iy=iy,
                        ix=ix,
                        out_y=(y0, y1),
                        out_x=(x0, x1),
                        read_y=(max(0, y0 - h), min(grid.ny, y1 + h)),
                        read_x=(max(0, x0 - h), min(grid.nx, x1 + h)),
                    )
                )
    if blend is not None:
        return [[task] for task in tasks]
    # Batches never mix time steps, so appending dates to a cube leaves the batches of
    # earlier dates (and so their bytes) unchanged.
    by_shape: OrderedDict[tuple, list[WindowTask]] = OrderedDict()
    for task in tasks:
        by_shape.setdefault((task.t, *task.window_shape), []).append(task)
    batches = []
    for (_, wh, ww), group in by_shape.items():
        per_window = max(1, wh * ww * t_depth * kernel.bytes_per_pixel)
        size = max(1, options.batch_memory_bytes // per_window)
        # several batches per group, so reading and writing overlap compute (a group of
        # many small windows, as on a large tile, still fills the budget)
        size = min(size, max(1, -(-len(group) // MIN_PIPELINE_BATCHES)))
        batches += [group[i : i + size] for i in range(0, len(group), size)]
    return batches


MIN_PIPELINE_BATCHES = 4
"""Batches a group of equal large windows is split into at least (when it has that many)."""


def blend_batch_bytes(options: EngineOptions) -> int:
    """With blending: the half of the budget for one block's region, the other half for
    its window batches."""
    return options.batch_memory_bytes // 2


def run_blend(grid: Grid, kernel: Kernel, options: EngineOptions) -> Blend | None:
    """The blend lattice of a run (None for crop-only); fixed by grid, kernel and options."""
    return make_blend(
        grid.ny, grid.nx, kernel, mode=options.blend, tile=options.tile, overlap=options.overlap
    )


def batch_keys(batch: list[WindowTask], grid: Grid) -> list[str]:
    """Marker keys of every chunk a batch writes."""
    return [key for task in batch for key, _, _ in task.chunks(grid)]


def batch_seed(batch: list[WindowTask], base_seed: int) -> int:
    """A seed fixed by the batch's first chunk, so stochastic kernels rerun identically."""
    return (base_seed * 1_000_003 + zlib.crc32(batch[0].key.encode())) % (2**31)


class WindowReader:
    """Reads windows (chunk + halo) from a cube via an LRU cache of decoded blocks."""

    def __init__(self, cube: xr.Dataset, bands: tuple[str, ...], grid: Grid, *, cache_bytes: int):
        self.vars = [cube[b].variable for b in bands]
        self.grid = grid
        self.cache_bytes = cache_bytes
        self._cache: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._cached = 0

    def _block(self, band: int, t: int | None, by: int, bx: int) -> np.ndarray:
        key = (band, t, by, bx)
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        g = self.grid
        ys = slice(by * g.cy, min(g.ny, (by + 1) * g.cy))
        xs = slice(bx * g.cx, min(g.nx, (bx + 1) * g.cx))
        tsel = slice(None) if t is None else t
        block = np.asarray(self.vars[band][tsel, ys, xs].values, dtype=np.float32)
        self._cache[key] = block
        self._cached += block.nbytes
        while self._cached > self.cache_bytes and len(self._cache) > 1:
            _, old = self._cache.popitem(last=False)
            self._cached -= old.nbytes
        return block

    def window(self, task: WindowTask) -> np.ndarray:
        """(C, H, W) for a scene task or (C, T, H, W) for a series task, float32."""
        g = self.grid
        (y0, y1), (x0, x1) = task.read_y, task.read_x
        depth = () if task.t is not None else (g.nt,)
        out = np.empty((len(self.vars), *depth, y1 - y0, x1 - x0), dtype=np.float32)
        for by in range(y0 // g.cy, (y1 - 1) // g.cy + 1):
            for bx in range(x0 // g.cx, (x1 - 1) // g.cx + 1):
                by0, bx0 = by * g.cy, bx * g.cx
                sy = slice(max(y0, by0), min(y1, by0 + g.cy))
                sx = slice(max(x0, bx0), min(x1, bx0 + g.cx))
                for c in range(len(self.vars)):
                    block = self._block(c, task.t, by, bx)
                    out[c, ..., sy.start - y0 : sy.stop - y0, sx.start - x0 : sx.stop - x0] = block[
                        ..., sy.start - by0 : sy.stop - by0, sx.start - bx0 : sx.stop - bx0
                    ]
        return out

    def batch(self, tasks: list[WindowTask]) -> np.ndarray:
        return np.stack([self.window(t) for t in tasks])


def compute_batch(
    kernel: Kernel,
    inputs: np.ndarray,
    tasks: list[WindowTask],
    *,
    seed: int,
    blend: Blend | None = None,
    batch_bytes: int = 512 * _MiB,
) -> list[dict[str, np.ndarray]]:
    """Run the kernel on a batch and crop each window's halo back to its chunk (or, with a
    blend, run and blend the overlapping windows of each block)."""
    if blend is not None:
        return [
            blend_block(
                kernel,
                inputs[i],
                read_y=task.read_y,
                read_x=task.read_x,
                out_y=task.out_y,
                out_x=task.out_x,
                blend=blend,
                batch_bytes=batch_bytes,
                seed=seed,
            )  # fmt: skip
            for i, task in enumerate(tasks)
        ]
    outputs = kernel(inputs, seed=seed)
    crops = []
    for i, task in enumerate(tasks):
        oy = slice(task.out_y[0] - task.read_y[0], task.out_y[1] - task.read_y[0])
        ox = slice(task.out_x[0] - task.read_x[0], task.out_x[1] - task.read_x[0])
        crops.append({name: np.ascontiguousarray(arr[i, oy, ox]) for name, arr in outputs.items()})
    return crops


class ChunkWriter:
    """Chunk-aligned region writes into the product store, each chunk then its marker."""

    def __init__(self, output_url: str, names: list[str], grid: Grid) -> None:
        self.url = output_url
        self.grid = grid
        group = zarr.open_group(zarr_store(output_url), mode="r+")
        self.arrays = {n: group[n] for n in names}
        self.markers = ChunkMarkers(output_url)

    def write(self, task: WindowTask, data: dict[str, np.ndarray], *, skip: set[str]) -> int:
        """Write the window's chunks not in ``skip``; returns how many were written."""
        written = 0
        for key, (y0, y1), (x0, x1) in task.chunks(self.grid):
            if key in skip:
                continue
            ys, xs = slice(y0, y1), slice(x0, x1)
            local = (slice(y0 - task.out_y[0], y1 - task.out_y[0]),
                     slice(x0 - task.out_x[0], x1 - task.out_x[0]))  # fmt: skip
            try:
                for name, arr in data.items():
                    block = np.ascontiguousarray(arr[local])
                    if task.t is None:
                        self.arrays[name][ys, xs] = block
                    else:
                        self.arrays[name][task.t, ys, xs] = block
                self.markers.mark(key)
            except (OSError, PermissionError) as exc:
                raise StoreError(
                    f"cannot write chunk {key} of {self.url!r} ({exc}); check the output URL, "
                    "its free space and write permission, then rerun (finished chunks are kept)"
                ) from exc
            written += 1
        return written


def prepare_output(
    cube: xr.Dataset,
    kernel: Kernel,
    output_url: str,
    grid: Grid,
    *,
    cube_url: str,
    overwrite: bool = False,
    blend: Blend | None = None,
) -> None:
    """Write the product store's template (metadata, coords, CF attrs) once.

    A store whose template marker exists is resumed if it was made by the same kernel
    on the same grid; when the cube has gained dates since, the product's time axis
    grows to match. Anything else is refused unless ``overwrite``.
    """
    markers = ChunkMarkers(output_url)
    attrs = _provenance(kernel, cube_url, blend)
    scene = kernel.temporal == "scene"
    if not overwrite and TEMPLATE_KEY in markers.done():
        remove_partial_writes(output_url)  # orphans of a killed run; runs before any task
        existing = xr.open_zarr(zarr_store(output_url), chunks=None)
        same = all(existing.attrs.get(k) == v for k, v in attrs.items()) and all(
            existing.sizes.get(d) == n for d, n in (("y", grid.ny), ("x", grid.nx))
        )
        n_old = existing.sizes.get("time", 0)
        if scene and same:
            old_times, new_times = existing["time"].values, cube["time"].values
            same = n_old <= grid.nt and np.array_equal(old_times, new_times[:n_old])
        if not same:
            raise StoreError(
                f"product store {output_url!r} was written by another model, cube, grid or "
                "time axis; choose a new output URL or pass overwrite=True (--overwrite) "
                "to replace it"
            )
        if scene and n_old < grid.nt:  # the cube gained dates: grow the product's time axis
            ds, encoding = _template(cube.isel(time=slice(n_old, None)), kernel, grid, attrs)
            from geoproc.zarr_layout import gdal_readable  # str coords as bytes, as when made

            gdal_readable(ds).to_zarr(
                zarr_store(output_url), mode="a", append_dim="time", compute=False,
                consolidated=True,
            )  # fmt: skip
        return
    if not overwrite and _has_foreign_store(output_url, attrs):
        raise StoreError(
            f"{output_url!r} already holds a Zarr store that this run did not create; "
            "choose a new output URL or pass overwrite=True (--overwrite) to replace it"
        )
    markers.clear()
    ds, encoding = _template(cube, kernel, grid, attrs)
    from geoproc.zarr_layout import gdal_readable, to_zarr_kwargs  # GDAL-readable (Zarr v2)

    gdal_readable(ds).to_zarr(
        zarr_store(output_url), mode="w", compute=False, encoding=encoding, **to_zarr_kwargs()
    )
    markers.mark(TEMPLATE_KEY)


def _template(
    cube: xr.Dataset, kernel: Kernel, grid: Grid, attrs: dict[str, str]
) -> tuple[xr.Dataset, dict]:
    """Lazy product Dataset (fill everywhere) with the cube's coords and CF attributes."""
    scene = kernel.temporal == "scene"
    dims = ("time", "y", "x") if scene else ("y", "x")
    shape = (cube.sizes["time"], grid.ny, grid.nx) if scene else (grid.ny, grid.nx)
    chunks = (1, grid.cy, grid.cx) if scene else (grid.cy, grid.cx)
    allowed = set(dims)
    coords = {k: _plain(cube[k].variable) for k in cube.coords if set(cube[k].dims) <= allowed}
    data_vars, encoding = {}, {}
    for spec in kernel.outputs:
        fill = spec.fill_value if spec.fill_value is not None else np.nan
        data = da.full(shape, fill, dtype=spec.dtype, chunks=chunks)
        var_attrs = spec.attrs()
        if "spatial_ref" in coords:
            var_attrs["grid_mapping"] = "spatial_ref"
        data_vars[spec.name] = xr.Variable(dims, data, attrs=var_attrs)
        encoding[spec.name] = {"chunks": chunks, "_FillValue": fill}
    return xr.Dataset(data_vars, coords=coords, attrs=attrs), encoding


@dataclass
class RunPlan:
    """What a run will do: the cube, its grid, finished chunks and the batches still to run."""

    cube: xr.Dataset
    grid: Grid
    done: set[str]
    todo: list[list[WindowTask]]
    chunks_total: int
    chunks_skipped: int
    blend: Blend | None = None


def plan_run(cube_url: str, kernel: Kernel, output_url: str, options: EngineOptions) -> RunPlan:
    """Open the cube, prepare the output store and list the batches whose chunks are not done.

    Shared by the in-process engine and the Dask runner so both resume the same way.
    """
    cube = open_cube(cube_url)
    grid = cube_grid(cube, kernel, cube_url=cube_url)
    blend = run_blend(grid, kernel, options)
    prepare_output(
        cube, kernel, output_url, grid, cube_url=cube_url, overwrite=options.overwrite, blend=blend
    )
    batches = plan_batches(grid, kernel, options)
    done = ChunkMarkers(output_url).done()
    todo = [b for b in batches if not all(k in done for k in batch_keys(b, grid))]
    total = sum(len(batch_keys(b, grid)) for b in batches)
    return RunPlan(
        cube, grid, done, todo, total, total - sum(len(batch_keys(b, grid)) for b in todo), blend
    )


def run_inference(
    cube_url: str,
    kernel: Kernel,
    output_url: str,
    *,
    options: EngineOptions | None = None,
) -> RunStats:
    """Run ``kernel`` over every chunk of a cube into a product store (resumable)."""
    options = options or EngineOptions()
    started = time.perf_counter()
    # One thread reads ahead, one writes behind; the writer's FIFO order puts the store
    # template before the first chunk write.
    readers = ThreadPoolExecutor(max_workers=1) if options.prefetch else None
    writers = ThreadPoolExecutor(max_workers=1) if options.prefetch else None
    prepared: Future | None = None
    if writers is not None and (
        options.overwrite or TEMPLATE_KEY not in ChunkMarkers(output_url).done()
    ):
        # A fresh store has no finished chunk, so the batches to run are known before
        # its template exists: write the template (~0.1-0.3 s of Zarr metadata) while
        # the first batch is read and computed instead of before. Errors (a foreign
        # store) surface before any chunk is written.
        cube = open_cube(cube_url)
        grid = cube_grid(cube, kernel, cube_url=cube_url)
        blend = run_blend(grid, kernel, options)
        todo = plan_batches(grid, kernel, options)
        done: set[str] = set()
        total = sum(len(batch_keys(b, grid)) for b in todo)
        plan = RunPlan(cube, grid, done, todo, total, 0, blend)
        prepared = writers.submit(
            prepare_output, cube, kernel, output_url, grid, cube_url=cube_url,
            overwrite=options.overwrite, blend=blend,
        )  # fmt: skip
    else:
        plan = plan_run(cube_url, kernel, output_url, options)
    cube, grid, done, todo = plan.cube, plan.grid, plan.done, plan.todo
    stats = RunStats(chunks_total=plan.chunks_total)
    stats.chunks_skipped = plan.chunks_skipped
    reader = WindowReader(
        cube, kernel.inputs, grid, cache_bytes=_cache_bytes(grid, kernel, options)
    )
    writer: list[ChunkWriter] = []

    def read(batch: list[WindowTask]) -> tuple[np.ndarray, float]:
        t0 = time.perf_counter()
        return reader.batch(batch), time.perf_counter() - t0

    def write(batch: list[WindowTask], crops: list[dict]) -> float:
        if prepared is not None:
            prepared.result()  # re-raises a refused template: no chunk is written
        if not writer:
            writer.append(ChunkWriter(output_url, [s.name for s in kernel.outputs], grid))
        t0 = time.perf_counter()
        for task, data in zip(batch, crops, strict=True):
            stats.chunks_written += writer[0].write(task, data, skip=done)
        return time.perf_counter() - t0

    try:
        pending_read: Future | None = None
        pending_write: Future | None = None
        if readers is not None and todo:
            pending_read = readers.submit(read, todo[0])
        for i, batch in enumerate(todo):
            if pending_read is not None:
                inputs, dt = pending_read.result()
            else:
                inputs, dt = read(batch)
            stats.seconds_read += dt
            if readers is not None and i + 1 < len(todo):
                pending_read = readers.submit(read, todo[i + 1])
            else:
                pending_read = None
            t0 = time.perf_counter()
            crops = compute_batch(
                kernel, inputs, batch, seed=batch_seed(batch, options.seed), blend=plan.blend,
                batch_bytes=blend_batch_bytes(options),
            )  # fmt: skip
            stats.seconds_compute += time.perf_counter() - t0
            del inputs
            if pending_write is not None:
                stats.seconds_write += pending_write.result()
            if writers is not None:
                pending_write = writers.submit(write, batch, crops)
            else:
                stats.seconds_write += write(batch, crops)
            stats.batches += 1
            stats.pixels += sum(
                (t.out_y[1] - t.out_y[0]) * (t.out_x[1] - t.out_x[0]) for t in batch
            )
        if pending_write is not None:
            stats.seconds_write += pending_write.result()
        if prepared is not None:
            prepared.result()  # an empty plan still leaves a valid (empty) store
    finally:
        for pool in (readers, writers):
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
    stats.seconds_total = time.perf_counter() - started
    log.info(
        "inference %s: %d chunks written, %d already done, %.1fs",
        kernel.name,
        stats.chunks_written,
        stats.chunks_skipped,
        stats.seconds_total,
    )
    return stats


def _provenance(kernel: Kernel, cube_url: str, blend: Blend | None = None) -> dict[str, str]:
    params: dict = {"halo": kernel.halo, "temporal": kernel.temporal}
    if blend is not None:  # crop-only stores keep the attrs they always had
        params.update(blend.parameters())
    attrs = {
        "product": kernel.name,
        "algorithm_version": kernel.version,
        "software": f"geoproc {__version__}",
        "source_cube": cube_url,
        "engine_parameters": json.dumps(params),
    }
    attrs.update(kernel.provenance())
    return attrs


def _cache_bytes(grid: Grid, kernel: Kernel, options: EngineOptions) -> int:
    if options.cache_bytes is not None:
        return options.cache_bytes
    k = window_chunks(grid, kernel, options)
    depth = 1 if kernel.temporal == "scene" else grid.nt
    row = len(kernel.inputs) * depth * grid.cy * grid.nx * 4
    return min(64 * _MiB, (k + 2) * row)


def _has_foreign_store(output_url: str, attrs: dict[str, str]) -> bool:
    """True when a store exists at the URL and its attrs are not this run's (never clobber)."""
    try:
        existing = zarr.open_group(zarr_store(output_url), mode="r")
    except (FileNotFoundError, zarr.errors.GroupNotFoundError, KeyError, ValueError):
        return False
    return any(existing.attrs.get(k) != v for k, v in attrs.items())


def _plain(var: xr.Variable) -> xr.Variable:
    """A coordinate copied without the cube's chunk encoding (the product chunks differ)."""
    keep = {k: v for k, v in var.encoding.items() if k in ("units", "calendar", "dtype")}
    out = xr.Variable(var.dims, np.asarray(var.values), attrs=dict(var.attrs))
    out.encoding = keep
    return out
