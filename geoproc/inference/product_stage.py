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

Products whose dates are independent (``Blocking.incremental is True``, LST) run on
`plan_date_windows`: groups of whole scenes where one date of the tile fits the budget
(run() then takes its own scene statistics), else chunk-aligned windows of a few dates,
with the scene statistics of a first pass over the same windows and each block given its
own dates' values (``Blocking.date_options``). Spatial blocks of every date had shrunk
with the series (LST at a year's density ran at 0.46-0.69x its whole-tile speed).

Two passes for products whose dates are joined only by a per-pixel statistic of their own
stored outputs (``Blocking.incremental == "history"``, flood's reference-water occurrence;
`run_two_pass`). Spatial blocks holding every date shrink as the series grows (a year of
138 dates at the 384 MiB budget: ~160 px) while cube chunks are 1 x 512 x 512, so each
chunk is decoded many times, and a 2-year run took 5x the 1-year one. Yet only the
reference joins the dates: each date's detection is per pixel and per date. Pass 1
(detection) runs the product over groups of dates of the whole tile (or, when one date of
the whole tile exceeds the budget, chunk-aligned windows of one date), each cube chunk
decoded once, and writes every output; pass 2 (classification) reads back only the small
stored outputs the reference needs (uint8/uint16) over chunk-aligned spatial blocks of
every date, computes the reference over every date and rewrites each date's classes, as
run() does on the whole series. Where one output chunk's whole series exceeds the
budget, pass 2 still works on whole output chunks (a block writing part of a chunk makes
zarr read, merge and rewrite it: a 2-year series spent most of pass 2 there) and reads
their dates in groups twice: the reference's counts summed over the groups, then the
classes group by group. The bytes are the single-pass and whole-tile bytes. A killed run
leaves no completion marker, so its rerun writes the template and both passes again.
Measured on a 2-core machine (`geoproc bench products`, a quarter of a year's dates, flood
seconds): 1024² 1 year 16.3 s -> 7.3 s, 2 years 81.2 s -> 14.0 s, peak RSS 0.86 GiB
either way; a full year (138 dates) at 512²: 34.1 s -> 8.8 s (whole tile 15.7 s).
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
from collections.abc import Callable, Collection
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr
import zarr

from geoproc import storage, zarr_layout
from geoproc.cube.per_step_attrs import select_steps
from geoproc.errors import NoDataError
from geoproc.inference.blocks import (
    Block,
    BlockStats,
    block_side,
    chunk_groups,
    date_windows,
    run_blocks,
    space_blocks,
    time_blocks,
)
from geoproc.products import blocking_of, yearly_refresh

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
CLASSIFY_BYTES_PER_DATE = 32
"""Working bytes per pixel and date of a two-pass product's pass 2, which size its blocks:
flood's reference and classes from the stored uint8/uint16 outputs, 4 B read and 16 B of
numpy temporaries at peak (tracemalloc, every date at once; 12 B a few dates at a time
from summed counts), plus the next block read ahead; rounded up for the allocator."""
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


def plan_date_windows(
    inputs: xr.Dataset,
    *,
    halo: int,
    budget_bytes: int,
    budget_halo: int | None = None,
    factor: float = WORK_FACTOR,
) -> list[Block]:
    """Blocks for a product whose dates are joined by nothing it computes per pixel: groups
    of dates over the whole tile where one date of it fits `budget_bytes`, else windows of a
    few dates each, chunk-aligned where a whole chunk fits (`date_windows`). Either way each
    1 x 512² cube chunk is decoded about once, whatever the series length."""
    nt, ny, nx = inputs.sizes["time"], inputs.sizes["y"], inputs.sizes["x"]
    per_pixel = bytes_per_pixel(inputs, nt=1, work_factor=factor)
    steps = int(budget_bytes // (per_pixel * ny * nx))
    if steps >= 1:
        return time_blocks(nt, ny, nx, steps=steps)
    margin = halo if budget_halo is None else budget_halo
    chunk = min(OUTPUT_CHUNK, max(ny, nx))
    side = block_side(budget_bytes, bytes_per_pixel=per_pixel, chunk=chunk, halo=margin)
    steps = int(budget_bytes // (per_pixel * (side + 2 * margin) ** 2))
    return date_windows(nt, ny, nx, side=side, halo=halo, steps=max(1, steps))


def independent_dates(module) -> bool:
    """Whether the product declares that no output of a date depends on another date
    (``Blocking.incremental is True``): its blocks may hold a few dates, not the series."""
    return blocking_of(module.SPEC).incremental is True


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
    years: Collection[int] | None = None,
    copy_from: storage.Location | None = None,
) -> xr.Dataset:
    """Run `module.run` block by block into the store at `location`; returns the template
    (the store's structure, lazily). `finish` adds the store attributes (provenance).

    With a Dask ``client``, groups of blocks run as tasks on its workers; ``open_inputs``
    (picklable, e.g. a `functools.partial`) opens the same inputs there.

    ``years`` (a yearly product in spatial blocks): compute only these years' layers and
    copy the others from the store at ``copy_from`` (`yearly_refresh.copy_years`) before
    any block runs; raises `yearly_refresh.PartialRefreshUnavailable` where the store is not
    one layer per calendar year or the copy cannot be trusted."""
    spec = module.SPEC
    halo = block_halo(module, inputs, options) if mode == "space" else 0
    context = _halo_inputs(module, inputs, mode)
    plan = plan_date_windows if mode == "space" and independent_dates(module) else plan_blocks
    blocks = plan(
        inputs,
        **({} if plan is plan_date_windows else {"mode": mode}),
        halo=halo,
        budget_bytes=budget_bytes,
        budget_halo=int(spec.halo) if context else None,
        factor=work_factor(module),
    )
    whole_scenes = mode == "space" and all(b.axis == "time" for b in blocks)
    if mode == "space" and not whole_scenes:
        options = {**options, **scene_options(module, inputs, options, budget_bytes, blocks)}
    probe = module.run(_probe(inputs, mode).load(), **options)
    template = finish(_template(probe, inputs, mode=mode))
    if not any(template[v].size for v in template.data_vars):
        raise NoDataError(f"{spec.name} produced no pixels.")
    _write_template(template, location)
    dims = {n: template[n].dims for n in template.data_vars}
    if years is not None:
        blocks = _partial_years(
            module, inputs, template, location, mode, options, years, copy_from,
            halo=halo, budget_bytes=budget_bytes, context=context,
        )  # fmt: skip
    elif mode == "space":
        blocks = per_year_blocks(module, inputs, template, halo, budget_bytes, context) or blocks
    if mode == "space" and two_pass(module, inputs, options):
        run_two_pass(
            module,
            inputs,
            location,
            options=options,
            dims=dims,
            budget_bytes=budget_bytes,
            client=client,
            open_inputs=open_inputs,
            prefetch=prefetch,
        )
        return template
    if whole_scenes:  # groups of whole scenes: run() takes its own scene statistics
        mode = "time"
    stats = _map_groups(
        _run_group,
        blocks,
        client=client,
        local=dict(module=module, open_inputs=lambda: inputs, prefetch=prefetch),
        remote=dict(module=module.__name__, open_inputs=open_inputs, prefetch=False),
        location=location,
        mode=mode,
        options=options,
        dims=dims,
    )
    _log_stats(spec.name, mode, stats)
    return template


def per_year_blocks(
    module,
    inputs: xr.Dataset,
    template: xr.Dataset,
    halo: int,
    budget_bytes: int,
    context: list[str],
    *,
    years: Collection[int] | None = None,
) -> list[Block] | None:
    """Spatial blocks per calendar year for a yearly product (``incremental="yearly"``),
    each holding that year's dates only (``years``: only those years' blocks); None where
    the product is not yearly or its ``year`` axis is not one layer per calendar year of
    the dates (e.g. a short series across New Year, which canopy labels as one year).

    Why: a year's outputs use that year's dates only, and blocks holding every date of a
    multi-year series shrink with its length, so each cube chunk is decoded many times
    (canopy 512² two years: 5.8x one year's time)."""
    if blocking_of(module.SPEC).incremental != "yearly" or "year" not in template.dims:
        return None
    wanted = None if years is None else {int(y) for y in years}
    dates_year = inputs["time"].values.astype("datetime64[Y]").astype(int) + 1970
    labels = [int(y) for y in np.asarray(template["year"].values)]
    if sorted(set(dates_year.tolist())) != labels or np.any(np.diff(dates_year) < 0):
        return None
    blocks = []
    for k, year in enumerate(labels):
        if wanted is not None and year not in wanted:
            continue
        steps = np.flatnonzero(dates_year == year)
        dates = slice(int(steps[0]), int(steps[-1]) + 1)
        for b in plan_blocks(
            select_steps(inputs, dates),
            mode="space",
            halo=halo,
            budget_bytes=budget_bytes,
            budget_halo=int(module.SPEC.halo) if context else None,
            factor=work_factor(module),
        ):
            blocks.append(dataclasses.replace(b, time=dates, year=k))
    return blocks


def _partial_years(
    module,
    inputs: xr.Dataset,
    template: xr.Dataset,
    location: storage.Location,
    mode: str,
    options: dict[str, Any],
    years: Collection[int],
    copy_from: storage.Location | None,
    *,
    halo: int,
    budget_bytes: int,
    context: list[str],
) -> list[Block]:
    """The blocks of ``years`` only, after the other years were copied from ``copy_from``."""
    blocks = per_year_blocks(module, inputs, template, halo, budget_bytes, context, years=years)
    if mode != "space" or blocks is None or two_pass(module, inputs, options):
        raise yearly_refresh.PartialRefreshUnavailable(
            "the store is not one layer per calendar year of the cube's dates"
        )
    if copy_from is None:
        raise ValueError("run_blocked(years=...) needs copy_from, the store to copy years from")
    wanted = {int(y) for y in years}
    kept = [int(y) for y in np.asarray(template["year"].values) if int(y) not in wanted]
    try:
        source = zarr.open_group(storage.zarr_store(copy_from, read_only=True), mode="r")
    except (OSError, KeyError) as exc:
        raise yearly_refresh.PartialRefreshUnavailable("no old store to copy from") from exc
    target = zarr.open_group(storage.zarr_store(location), mode="r+")
    yearly_refresh.copy_years(source, target, kept)
    return blocks


def _map_groups(fn: Callable, blocks: list[Block], *, client, local: dict, remote: dict, **kw):
    """`fn` over `blocks` in this process (``local`` arguments), or with a Dask ``client``
    one task per group of blocks sharing output chunks (``remote`` arguments): no two
    workers write the same chunk. Each task opens the cube itself (``open_inputs``),
    arrays never travel. Returns the summed `BlockStats`."""
    if client is None:
        return fn(blocks, **local, **kw)
    if "open_inputs" in remote and remote["open_inputs"] is None:
        raise ValueError("run_blocked on a Dask client needs open_inputs")
    futures = client.map(fn, chunk_groups(blocks, chunk=OUTPUT_CHUNK), **remote, **kw, pure=False)
    stats = BlockStats()
    for part in client.gather(futures):
        stats.blocks += part.blocks
        stats.read_s += part.read_s
        stats.compute_s += part.compute_s
        stats.write_s += part.write_s
    return stats


def _log_stats(name: str, what: str, stats: BlockStats) -> None:
    log.info(
        "%s: %d %s block(s), read %.1fs, compute %.1fs, write %.1fs",
        name,
        stats.blocks,
        what,
        stats.read_s,
        stats.compute_s,
        stats.write_s,
    )


def two_pass(module, inputs: xr.Dataset, options: dict[str, Any]) -> bool:
    """Whether a ``space`` run of `module` on `inputs` goes in two passes (`run_two_pass`):
    products declared ``incremental="history"`` with the hooks ``detect_dates``,
    ``history_counts`` and ``classify_history``, in the configuration where that declaration holds (the one a
    new date may be appended to: every date's detection is per pixel and per date, only
    the per-pixel statistic over the stored `history_outputs` joins the dates)."""
    blocking = blocking_of(module.SPEC)
    variables = tuple(map(str, inputs.data_vars))
    return (
        blocking.incremental == "history"
        and bool(blocking.history_outputs)
        and all(hasattr(module, h) for h in ("detect_dates", "history_counts", "classify_history"))
        and blocking.appends("space", options, variables)
        and blocking.resolve(variables, options, {}, module) == "space"
    )


def plan_two_pass(
    inputs: xr.Dataset,
    *,
    halo: int,
    budget_bytes: int,
    factor: float = WORK_FACTOR,
) -> tuple[list[Block], list[Block], int]:
    """The blocks of both passes and pass 2's dates per read.

    Pass 1: `plan_date_windows` (groups of dates over the whole tile that fit the budget,
    else chunk-aligned windows of as many dates as fit, when one date of the tile does not).
    Pass 2: spatial blocks of every date, no halo, sized by `CLASSIFY_BYTES_PER_DATE`:
    whole output chunks (or multiples) holding every date where they fit; else one output
    chunk a block, read `steps` dates at a time (twice: the statistic's counts, then the
    classes), so a block never rewrites part of a chunk and memory holds `steps` dates."""
    nt, ny, nx = inputs.sizes["time"], inputs.sizes["y"], inputs.sizes["x"]
    chunk = min(OUTPUT_CHUNK, max(ny, nx))
    detect = plan_date_windows(inputs, halo=halo, budget_bytes=budget_bytes, factor=factor)
    side = block_side(
        budget_bytes, bytes_per_pixel=nt * CLASSIFY_BYTES_PER_DATE, chunk=chunk, halo=0
    )
    if side >= chunk:
        return detect, space_blocks(nt, ny, nx, side=side, halo=0), nt
    if chunk * chunk * CLASSIFY_BYTES_PER_DATE > budget_bytes:
        side = block_side(budget_bytes, bytes_per_pixel=CLASSIFY_BYTES_PER_DATE, chunk=chunk)
    else:
        side = chunk
    steps = max(1, int(budget_bytes // (side * side * CLASSIFY_BYTES_PER_DATE)))
    return detect, space_blocks(nt, ny, nx, side=side, halo=0), min(steps, nt)


def run_two_pass(
    module,
    inputs: xr.Dataset,
    location: storage.Location,
    *,
    options: dict[str, Any],
    dims: dict[str, tuple],
    budget_bytes: int = DEFAULT_BLOCK_BYTES,
    client=None,
    open_inputs: Callable[[], xr.Dataset] | None = None,
    prefetch: bool = True,
) -> None:
    """Write a ``space`` product in two passes into the template at `location` (see the
    module docstring): ``module.detect_dates(window, **options)`` on pass 1's windows
    writes every output; ``module.classify_history(history, **options)`` on pass 2's
    blocks, from the stored `history_outputs` of every date, returns the outputs it
    rewrites. Pass 2 starts when every pass-1 write is done (on Dask: gathered)."""
    name = module.SPEC.name
    halo = block_halo(module, inputs, options)
    detect, classify, steps = plan_two_pass(
        inputs, halo=halo, budget_bytes=budget_bytes, factor=work_factor(module)
    )
    whole = len(detect) == 1 and detect[0].time == slice(0, inputs.sizes["time"])
    common = dict(client=client, location=location, options=options, dims=dims)
    local = dict(module=module, open_inputs=lambda: inputs, prefetch=prefetch)
    remote = dict(module=module.__name__, open_inputs=open_inputs, prefetch=False)
    if whole:  # one block holds the tile series: run() itself gives the final outputs
        stats = _map_groups(_run_group, detect, local=local, remote=remote, mode="time", **common)
        _log_stats(name, "whole-series", stats)
        return
    stats = _map_groups(_detect_group, detect, local=local, remote=remote, **common)
    _log_stats(name, "detection", stats)
    names = blocking_of(module.SPEC).history_outputs
    local = dict(module=module, prefetch=prefetch, history_outputs=names, steps=steps)
    remote = dict(module=module.__name__, prefetch=False, history_outputs=names, steps=steps)
    stats = _map_groups(_classify_group, classify, local=local, remote=remote, **common)
    _log_stats(name, "classification", stats)


def _detect_group(
    blocks: list[Block],
    module,
    open_inputs: Callable[[], xr.Dataset],
    location: storage.Location,
    options: dict[str, Any],
    dims: dict[str, tuple],
    prefetch: bool,
) -> BlockStats:
    """Pass 1: read -> ``module.detect_dates`` -> crop -> region write (dates and window)."""
    if isinstance(module, str):
        module = importlib.import_module(module)
    inputs = open_inputs()
    group = zarr.open_group(storage.zarr_store(location), mode="r+")

    def read(block: Block) -> xr.Dataset:
        return _window(inputs, block.time, block.read_y, block.read_x)

    def compute(block: Block, window: xr.Dataset) -> xr.Dataset:
        return module.detect_dates(window, **options).isel(block.crop)

    def write(block: Block, out: xr.Dataset) -> None:
        _write_region(group, dims, out, {"time": block.time, "y": block.y, "x": block.x})

    return run_blocks(blocks, read=read, compute=compute, write=write, prefetch=prefetch)


def _classify_group(
    blocks: list[Block],
    module,
    location: storage.Location,
    options: dict[str, Any],
    dims: dict[str, tuple],
    prefetch: bool,
    history_outputs: tuple[str, ...],
    steps: int,
) -> BlockStats:
    """Pass 2: the stored `history_outputs` of every date -> ``module.classify_history``
    -> the arrays it returns, written back (encoded values both ways). Where a block's
    series is read `steps` dates at a time, ``module.history_counts`` is summed over
    them, then the classes are computed and written `steps` dates at a time, all in the
    compute stage, so one group of dates is in memory (not one reading beside one
    classifying: that doubled the peak of a 2-year series)."""
    if isinstance(module, str):
        module = importlib.import_module(module)
    group = zarr.open_group(storage.zarr_store(location), mode="r+")

    def index(block: Block, dates: slice, name: str) -> tuple:
        region = {"time": dates, "y": block.y, "x": block.x}
        return tuple(region.get(d, slice(None)) for d in dims[name])

    def stored(block: Block, dates: slice) -> dict[str, np.ndarray]:
        return {n: group[n][index(block, dates, n)] for n in history_outputs}

    def put(block: Block, dates: slice, out: dict[str, np.ndarray]) -> None:
        for name, values in out.items():
            group[name][index(block, dates, name)] = values.astype(group[name].dtype, copy=False)

    def slabs(block: Block) -> list[slice]:
        nt = block.time.stop
        return [slice(t, min(nt, t + steps)) for t in range(0, nt, steps)]

    def read(block: Block) -> dict[str, np.ndarray] | None:
        if steps >= block.time.stop:  # every date at once: the history itself
            return stored(block, block.time)
        return None  # a few dates at a time, in compute: one group of dates in memory

    def compute(block: Block, item) -> dict[str, np.ndarray] | None:
        if item is not None:
            return module.classify_history(item, **options)
        counts = None
        for dates in slabs(block):
            counts = module.history_counts(stored(block, dates), counts, **options)
        for dates in slabs(block):
            put(block, dates, module.classify_history(stored(block, dates), counts, **options))
        return None

    def write(block: Block, out: dict[str, np.ndarray] | None) -> None:
        if out is not None:
            put(block, block.time, out)

    return run_blocks(blocks, read=read, compute=compute, write=write, prefetch=prefetch)


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
    module,
    inputs: xr.Dataset,
    options: dict[str, Any],
    budget_bytes: int,
    blocks: list[Block] | None = None,
) -> dict[str, Any]:
    """Options carrying scene-wide statistics into spatial blocks (``Blocking.
    scene_statistics``), computed from one pass over the cores of `blocks` (default: the
    spatial blocks of every date), each given with its dates; empty for products without
    any. Per-date options (``Blocking.date_options``) come back with one value per cube
    date, and each block gets its own dates' (`_block_options`)."""
    name = blocking_of(module.SPEC).scene_statistics
    if not name:
        return {}
    if blocks is None:
        blocks = plan_blocks(
            inputs, mode="space", halo=0, budget_bytes=budget_bytes, factor=work_factor(module)
        )
    windows = ((b.time, _window(inputs, b.time, b.y, b.x)) for b in blocks)
    found = getattr(module, name)(inputs, windows, **options)
    for key in blocking_of(module.SPEC).date_options:
        if found.get(key) is not None and len(found[key]) != inputs.sizes["time"]:
            raise ValueError(f"{name} gave {key} for {len(found[key])} of the cube's dates")
    return found


def _block_options(module, options: dict[str, Any], block: Block) -> dict[str, Any]:
    """`options` with the per-date ones (``Blocking.date_options``) cut to `block`'s dates."""
    names = [n for n in blocking_of(module.SPEC).date_options if options.get(n) is not None]
    if not names:
        return options
    return {**options, **{n: np.asarray(options[n])[block.time] for n in names}}


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
            return _window(inputs, block.time, block.read_y, block.read_x)
        core = _window(inputs, block.time, block.y, block.x)
        return core, _window(inputs[context], block.time, block.read_y, block.read_x)

    def compute(block: Block, window) -> xr.Dataset:
        given = _block_options(module, options, block)
        if context:  # the core, and the halo inputs around it
            return module.run(window[0], **given, halo_context=(window[1], block.crop))
        out = module.run(window, **given)
        return out.isel(block.crop) if mode == "space" else out

    def write(block: Block, out: xr.Dataset) -> None:
        # Straight to the zarr arrays: the template fixed dtypes, fill values and chunks, and
        # xarray's region write would re-read the store's metadata for every block.
        region = {"time": block.time}
        if mode == "space":  # a yearly block's `time` (its year's dates) indexes no output
            region = {"y": block.y, "x": block.x, **({} if block.year is not None else region)}
        if block.year is not None:
            region["year"] = slice(block.year, block.year + 1)
        _write_region(group, dims, out, region)

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

    Groups of new dates over the whole tile: each run() sees whole scenes, so no scene
    statistics pass is needed (measured for one LST date on 1024²: 1.97 s, against 2.66 s
    in spatial blocks with their own first pass).

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
        return select_steps(new_inputs, block.time).load()

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


def _write_region(group, dims: dict[str, tuple], out: xr.Dataset, region: dict[str, slice]):
    """Each output of `out` into its zarr array at `region` (dims not named: whole axis)."""
    for name, var_dims in dims.items():
        var = out[name].transpose(*var_dims)
        group[name][tuple(region.get(d, slice(None)) for d in var_dims)] = _encoded(var)


def _window(inputs: xr.Dataset, dates: slice, y: slice, x: slice) -> xr.Dataset:
    """The loaded window of `inputs` at these dates and pixels, its per-step attributes
    (e.g. the items naming each date's sensor) cut to its dates (`select_steps`)."""
    return select_steps(inputs, dates).isel(y=y, x=x).load()


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
