"""The product stage, block by block: a product's run() over blocks of the cube, written
region by region into one product store.

Why: `module.run(inputs.load())` holds the whole tile series (every date, every band, as
float64 after CF decoding) plus the product's intermediates: peak memory grows with tile
area x series length. Here the working set is one block whose side (or number of dates)
comes from a memory budget, the series length and the variable count; the product is
called only through its public ``run(dataset, **options)``, so its science is untouched.
Results equal the whole-tile run when the product's declaration holds (see
`geoproc.products.DECLARED_BLOCKING`): per-pixel-over-time statistics are exact under
spatial blocking because every block carries every time step, and a halo as wide as the
product declares gives each core pixel the neighbours it would see in the whole tile.

Store layout and bytes match the whole-tile path: a template with the same variables,
attributes, encodings and chunks (time 1, y/x 512) is written first (metadata and
coordinates only), then each block's core is a region write. The caller writes the
completion marker after the last block.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr
import zarr

from geoproc import storage, zarr_layout
from geoproc.errors import NoDataError
from geoproc.inference.blocks import (
    Block,
    BlockStats,
    block_side,
    chunk_groups,
    run_blocks,
    space_blocks,
    time_blocks,
)
from geoproc.products import blocking_of

log = logging.getLogger(__name__)

_MiB = 1024 * 1024
DEFAULT_BLOCK_BYTES = 384 * _MiB
"""Working-set budget of one block. Three blocks are in flight (reading, computing,
writing), so a worker needs about this plus the inputs and outputs of two more blocks."""
WORK_FACTOR = 3.0
"""Working bytes per decoded input byte inside run() (intermediates, outputs), measured on
flood and canopy over a one-year series (see `geoproc bench products`)."""
OUTPUT_CHUNK = 512
"""y/x chunk of product stores (time and year chunks are 1)."""
_PROBE_PX = 8


def declared_inputs(inputs: xr.Dataset, spec) -> xr.Dataset:
    """Only the variables the product declares: the others would be read for nothing."""
    names = set(spec.required_inputs) | set(spec.optional_inputs) | {"Fmask"}
    return inputs[[v for v in inputs.data_vars if v in names]]


def bytes_per_pixel(inputs: xr.Dataset, *, nt: int, work_factor: float = WORK_FACTOR) -> float:
    """Decoded input bytes of one pixel over `nt` dates, times the working factor."""
    total = 0
    for var in inputs.data_vars.values():
        if {"y", "x"} <= set(var.dims):
            packed = "scale_factor" in var.encoding or "add_offset" in var.encoding
            itemsize = 8 if packed or var.dtype.kind == "f" else var.dtype.itemsize
            total += max(itemsize, var.dtype.itemsize)
    return max(1, total) * nt * work_factor


def work_factor(module) -> float:
    """The product's declared working bytes per decoded input byte, else `WORK_FACTOR`."""
    return blocking_of(module.SPEC).work_factor or WORK_FACTOR


def plan_blocks(
    inputs: xr.Dataset,
    *,
    mode: str,
    halo: int,
    budget_bytes: int,
    budget_halo: int | None = None,
    factor: float = WORK_FACTOR,
) -> list[Block]:
    """Spatial blocks (every date) or date groups (whole tile) that fit `budget_bytes`
    (``budget_halo``: the halo the budget must hold, when only a few inputs carry `halo`;
    ``factor``: the product's working bytes per decoded input byte)."""
    nt, ny, nx = inputs.sizes["time"], inputs.sizes["y"], inputs.sizes["x"]
    if mode == "space":
        side = block_side(
            budget_bytes,
            bytes_per_pixel=bytes_per_pixel(inputs, nt=nt, work_factor=factor),
            chunk=min(OUTPUT_CHUNK, max(ny, nx)),
            halo=halo if budget_halo is None else budget_halo,
        )
        return space_blocks(nt, ny, nx, side=side, halo=halo)
    per_date = bytes_per_pixel(inputs, nt=1, work_factor=factor) * ny * nx
    return time_blocks(nt, ny, nx, steps=max(1, int(budget_bytes // per_date)))


def run_blocked(
    module,
    inputs: xr.Dataset,
    location: storage.Location,
    *,
    mode: str,
    options: dict[str, Any],
    finish: Callable[[xr.Dataset], xr.Dataset],
    budget_bytes: int = DEFAULT_BLOCK_BYTES,
    prefetch: bool = True,
    client=None,
    open_inputs: Callable[[], xr.Dataset] | None = None,
) -> xr.Dataset:
    """Run `module.run` block by block into the store at `location`; returns the template
    (the store's structure, lazily). `finish` adds the store attributes (provenance).

    With a Dask ``client``, groups of blocks run as tasks on its workers; ``open_inputs``
    (picklable, e.g. a `functools.partial`) opens the same inputs there."""
    spec = module.SPEC
    halo = block_halo(module, inputs, options) if mode == "space" else 0
    context = _halo_inputs(module, inputs, mode)
    blocks = plan_blocks(
        inputs,
        mode=mode,
        halo=halo,
        budget_bytes=budget_bytes,
        budget_halo=int(spec.halo) if context else None,
        factor=work_factor(module),
    )
    if mode == "space":
        options = {**options, **scene_options(module, inputs, options, budget_bytes)}
    probe = module.run(_probe(inputs, mode).load(), **options)
    template = finish(_template(probe, inputs, mode=mode))
    if not any(template[v].size for v in template.data_vars):
        raise NoDataError(f"{spec.name} produced no pixels.")
    _write_template(template, location)
    dims = {n: template[n].dims for n in template.data_vars}
    if client is None:
        stats = _run_group(blocks, module, lambda: inputs, location, mode, options, dims, prefetch)
    else:
        # One Dask task per group of blocks sharing output chunks: no two workers write the
        # same chunk. Each task opens the cube itself (`open_inputs`), arrays never travel.
        if open_inputs is None:
            raise ValueError("run_blocked on a Dask client needs open_inputs")
        futures = client.map(
            _run_group,
            chunk_groups(blocks, chunk=OUTPUT_CHUNK),
            module=module.__name__,
            open_inputs=open_inputs,
            location=location,
            mode=mode,
            options=options,
            dims=dims,
            prefetch=False,
            pure=False,
        )
        stats = BlockStats()
        for part in client.gather(futures):
            stats.blocks += part.blocks
            stats.read_s += part.read_s
            stats.compute_s += part.compute_s
            stats.write_s += part.write_s
    log.info(
        "%s: %d %s block(s), read %.1fs, compute %.1fs, write %.1fs",
        spec.name,
        stats.blocks,
        mode,
        stats.read_s,
        stats.compute_s,
        stats.write_s,
    )
    return template


def _halo_inputs(module, inputs: xr.Dataset, mode: str) -> list[str]:
    """The inputs read with the halo while the rest is read for the core (space mode)."""
    if mode != "space":
        return []
    return [v for v in blocking_of(module.SPEC).halo_inputs if v in inputs]


def block_halo(module, inputs: xr.Dataset, options: dict[str, Any]) -> int:
    """The spec's halo, or the declaration's ``halo_of`` for these options where wider."""
    name = blocking_of(module.SPEC).halo_of
    extra = getattr(module, name)(inputs, **options) if name else 0
    return max(int(module.SPEC.halo), int(extra))


def scene_options(
    module, inputs: xr.Dataset, options: dict[str, Any], budget_bytes: int
) -> dict[str, Any]:
    """Options carrying scene-wide statistics into spatial blocks (``Blocking.
    scene_statistics``), computed from one pass over blocks of every date (no halo);
    empty for products without any."""
    name = blocking_of(module.SPEC).scene_statistics
    if not name:
        return {}
    blocks = plan_blocks(
        inputs, mode="space", halo=0, budget_bytes=budget_bytes, factor=work_factor(module)
    )
    windows = (inputs.isel(time=b.time, y=b.read_y, x=b.read_x).load() for b in blocks)
    return getattr(module, name)(windows, **options)


def _run_group(
    blocks: list[Block],
    module,
    open_inputs: Callable[[], xr.Dataset],
    location: storage.Location,
    mode: str,
    options: dict[str, Any],
    dims: dict[str, tuple],
    prefetch: bool,
) -> BlockStats:
    """read -> run -> crop -> region write for `blocks` (in this process or a Dask worker)."""
    if isinstance(module, str):
        module = importlib.import_module(module)
    inputs = open_inputs()
    group = zarr.open_group(storage.zarr_store(location), mode="r+")

    context = _halo_inputs(module, inputs, mode)

    def read(block: Block) -> xr.Dataset | tuple[xr.Dataset, xr.Dataset]:
        if not context:
            return inputs.isel(time=block.time, y=block.read_y, x=block.read_x).load()
        core = inputs.isel(time=block.time, y=block.y, x=block.x).load()
        return core, inputs[context].isel(time=block.time, y=block.read_y, x=block.read_x).load()

    def compute(block: Block, window) -> xr.Dataset:
        if context:  # the core, and the halo inputs around it
            return module.run(window[0], **options, halo_context=(window[1], block.crop))
        out = module.run(window, **options)
        return out.isel(block.crop) if mode == "space" else out

    def write(block: Block, out: xr.Dataset) -> None:
        # Straight to the zarr arrays: the template fixed dtypes, fill values and chunks, and
        # xarray's region write would re-read the store's metadata for every block.
        region = {"y": block.y, "x": block.x} if mode == "space" else {"time": block.time}
        for name, var_dims in dims.items():
            var = out[name].transpose(*var_dims)
            index = tuple(region.get(d, slice(None)) for d in var_dims)
            group[name][index] = _encoded(var)

    return run_blocks(blocks, read=read, compute=compute, write=write, prefetch=prefetch)


def append_dates(
    module,
    new_inputs: xr.Dataset,
    location: storage.Location,
    *,
    options: dict[str, Any],
    attrs: dict[str, Any],
    budget_bytes: int = DEFAULT_BLOCK_BYTES,
    n_old: int | None = None,
) -> int:
    """Add the outputs of `new_inputs`' dates (all after the store's last date) to a store of
    a product whose dates are independent (``Blocking.incremental``); returns the dates added.

    ``n_old``: the dates of the complete version (from its marker). Pass it: a crash after
    the arrays were resized leaves them longer than the complete version, and the rerun
    must write where the first try did, not after it (the shape is only a fallback).

    Readers never see a half-written store: arrays grow and new chunks are written first,
    while the consolidated metadata (what xarray and the publisher open) still describes the
    old version; rewriting it (one object, an atomic PUT or rename) switches readers to the
    new version. A crash before that leaves the old version readable and the marker stale,
    so the rerun recomputes."""

    store = storage.zarr_store(location)
    # Not through the consolidated metadata: it keeps describing the old version until the
    # end, and arrays opened from it would not see their new shape.
    group = zarr.open_group(store, mode="r+", use_consolidated=False)
    n_old = group["time"].shape[0] if n_old is None else n_old
    n_new = new_inputs.sizes["time"]
    probe = module.run(_probe(new_inputs, "time").load(), **options)
    names = list(probe.data_vars)
    template_dims = _grow_time_axis(group, new_inputs, n_old, names)

    def read(block: Block) -> xr.Dataset:
        return new_inputs.isel(time=block.time).load()

    def compute(block: Block, window: xr.Dataset) -> xr.Dataset:
        return module.run(window, **options)

    def write(block: Block, out: xr.Dataset) -> None:
        shifted = slice(n_old + block.time.start, n_old + block.time.stop)
        for name in names:
            var = out[name].transpose(*template_dims[name])
            group[name][shifted] = _encoded(var).astype(group[name].dtype, copy=False)

    per_date = (
        bytes_per_pixel(new_inputs, nt=1, work_factor=work_factor(module))
        * new_inputs.sizes["y"]
        * new_inputs.sizes["x"]
    )
    blocks = time_blocks(
        n_new,
        new_inputs.sizes["y"],
        new_inputs.sizes["x"],
        steps=max(1, int(budget_bytes // per_date)),
    )
    run_blocks(blocks, read=read, compute=compute, write=write)
    group.attrs.update(attrs)
    zarr.consolidate_metadata(store, zarr_format=group.metadata.zarr_format)  # old v3 too
    return n_new


def append_with_history(
    module,
    new_inputs: xr.Dataset,
    location: storage.Location,
    *,
    n_old: int,
    options: dict[str, Any],
    attrs: dict[str, Any],
    history_outputs: tuple[str, ...],
    budget_bytes: int = DEFAULT_BLOCK_BYTES,
) -> tuple[bool, float, str]:
    """Append `new_inputs`' dates to the `n_old`-date store of a product whose new dates
    depend on the older dates' stored outputs (``Blocking.incremental == "history"``, e.g.
    flood's reference water), in spatial blocks with the product's halo.

    Each block reads the new dates from the cube and `history_outputs` of the `n_old`
    older dates from the store; ``module.append_block`` returns the new dates' outputs and
    counts, summed over the blocks' cores and judged by ``module.append_verdict``. Returns
    (kept, figure, report line). Kept: the consolidated metadata is rewritten last, as in
    `append_dates`, so readers switch to the new version at once. Not kept: the store is
    left as readers see it (arrays grown, metadata old) for the caller's full recompute.
    A crash leaves the old version readable and the marker stale; the rerun takes `n_old`
    from the marker, so it writes the same chunks again."""

    store = storage.zarr_store(location)
    group = zarr.open_group(store, mode="r+", use_consolidated=False)
    n_new, ny, nx = new_inputs.sizes["time"], new_inputs.sizes["y"], new_inputs.sizes["x"]
    names = [v.name for v in module.SPEC.outputs]
    template_dims = _grow_time_axis(group, new_inputs, n_old, names)
    halo = int(module.SPEC.halo)
    history_bytes = sum(np.dtype(group[n].dtype).itemsize for n in history_outputs) * n_old
    side = block_side(
        budget_bytes,
        bytes_per_pixel=bytes_per_pixel(new_inputs, nt=n_new) + history_bytes * WORK_FACTOR,
        chunk=min(OUTPUT_CHUNK, max(ny, nx)),
        halo=halo,
    )
    counts: dict[str, int] = {}

    def read(block: Block) -> tuple[xr.Dataset, dict[str, np.ndarray]]:
        window = new_inputs.isel(y=block.read_y, x=block.read_x).load()
        old = {n: group[n][:n_old, block.read_y, block.read_x] for n in history_outputs}
        return window, old

    def compute(block: Block, item) -> xr.Dataset:
        out, part = module.append_block(*item, core=block.crop, **options)
        for key, value in part.items():
            counts[key] = counts.get(key, 0) + int(value)
        return out.isel(block.crop)

    def write(block: Block, out: xr.Dataset) -> None:
        for name in names:
            var = out[name].transpose(*template_dims[name])
            index = tuple(
                {"time": slice(n_old, n_old + n_new), "y": block.y, "x": block.x}.get(
                    d, slice(None)
                )
                for d in template_dims[name]
            )
            group[name][index] = _encoded(var).astype(group[name].dtype, copy=False)

    run_blocks(
        space_blocks(n_new, ny, nx, side=side, halo=halo), read=read, compute=compute, write=write
    )
    kept, figure, line = module.append_verdict(counts, n_new, **options)
    if kept:
        group.attrs.update(attrs)
        zarr.consolidate_metadata(store, zarr_format=group.metadata.zarr_format)
    return kept, figure, line


def _encoded(var: xr.DataArray) -> np.ndarray:
    """The values as xarray's Zarr writer stores them (fill values, packing, dtype), by
    xarray's own CF encoder, so region writes and whole writes give the same bytes."""
    return np.asarray(xr.conventions.encode_cf_variable(var.variable, name=var.name).values)


def _probe(inputs: xr.Dataset, mode: str) -> xr.Dataset:
    """A few pixels (every date for `space`, one date for `time`): run() on it gives the
    output variables, dtypes, attributes and non-spatial dims of the whole result."""
    window = {"y": slice(0, _PROBE_PX), "x": slice(0, _PROBE_PX)}
    if mode == "time":
        window["time"] = slice(0, 1)
    return inputs.isel(window)


def _template(probe: xr.Dataset, inputs: xr.Dataset, *, mode: str) -> xr.Dataset:
    """The whole result's structure: probe variables at full size (lazy zeros, never
    written) and coordinates taken from the inputs where they run along blocked dims."""
    blocked = {"y", "x"} | ({"time"} if mode == "time" else set())
    size = {d: inputs.sizes[d] for d in blocked}
    coords: dict[str, xr.Variable] = {}
    for name, coord in probe.coords.items():
        if set(coord.dims) & blocked:
            if name not in inputs.coords:
                raise ValueError(
                    f"{name!r} varies along {coord.dims} in {probe.attrs.get('product')} "
                    "output but is not an input coordinate: declare the product `tile`"
                )
            coords[name] = xr.Variable(
                coord.dims, np.asarray(inputs.coords[name].values), coord.attrs, coord.encoding
            )
        else:
            coords[name] = coord.variable
    data_vars = {}
    for name, var in probe.data_vars.items():
        shape = tuple(size.get(d, n) for d, n in zip(var.dims, var.shape, strict=True))
        data_vars[name] = xr.Variable(
            var.dims,
            da.zeros(shape, dtype=var.dtype, chunks=_chunks(var.dims, shape)),
            var.attrs,
            {k: v for k, v in var.encoding.items() if k not in ("chunks", "preferred_chunks")},
        )
    return xr.Dataset(data_vars, coords=coords, attrs=probe.attrs)


def _chunks(dims: tuple, shape: tuple) -> tuple[int, ...]:
    """The whole-tile path's chunks: 1 along time/year, 512 along y/x, whole otherwise."""
    return tuple(
        1 if d in ("time", "year") else min(OUTPUT_CHUNK, n)
        for d, n in zip(dims, shape, strict=True)
    )


def _write_template(template: xr.Dataset, location: storage.Location) -> None:
    """Metadata and coordinates now, data chunks by the region writes (lazy zeros dropped).

    Non-index coordinates get the chunks the whole-tile path gives them (it chunks the
    whole Dataset), and the layout is the whole-tile path's (`geoproc.zarr_layout`), so
    both paths write the same bytes."""
    ds = zarr_layout.with_compressor(zarr_layout.gdal_readable(template.copy()))
    for name, var in ds.variables.items():
        var.encoding.pop("preferred_chunks", None)
        var.encoding.pop("chunks", None)
        if name not in ds.data_vars and name not in ds.indexes and var.dims:
            var.encoding["chunks"] = _chunks(var.dims, var.shape)
    fs, path = storage.filesystem(location)
    if fs.exists(path):
        fs.rm(path, recursive=True)
    ds.to_zarr(
        storage.zarr_store(location), mode="w", compute=False, **zarr_layout.to_zarr_kwargs()
    )


def _grow_time_axis(group, new_inputs: xr.Dataset, n_old: int, names: list[str]) -> dict:
    """Resize every time-indexed array of a product store to ``n_old`` + the new dates (an
    absolute size: a rerun after a crash resizes to the same), write the new times and
    time coordinates; returns the stored dimension order of the outputs ``names``."""
    from xarray.coding.times import encode_cf_datetime

    n_new = new_inputs.sizes["time"]
    template_dims = {n: zarr_layout.dimension_names(group[n]) for n in names}
    along_time = [
        n for n in group.array_keys() if "time" in (zarr_layout.dimension_names(group[n]) or ())
    ]
    for name in along_time:
        array = group[name]
        array.resize((n_old + n_new, *array.shape[1:]))
    units = group["time"].attrs.get("units", "seconds since 1970-01-01")
    calendar = group["time"].attrs.get("calendar", "proleptic_gregorian")
    encoded, _, _ = encode_cf_datetime(new_inputs["time"].values, units, calendar)
    group["time"][n_old:] = encoded.astype(group["time"].dtype)
    for name in along_time:
        if name not in names and name != "time" and name in new_inputs.coords:
            group[name][n_old:] = zarr_layout.encode_strings(
                new_inputs.coords[name].values, group[name].dtype
            )
    return template_dims
