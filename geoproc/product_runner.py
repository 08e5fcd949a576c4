"""Run a product on a cube store and persist it: `{out}/products/{product}/{tile}.zarr`.

A marker object holding the fingerprint of the inputs (complete cube steps, their source
items and item versions, product version and parameters) is written *after* the data: the
same inputs skip the run, and a run killed mid-write leaves no marker, so the rerun gives
the bytes of a clean run. New cube dates take the way each product declares
(`geoproc.products.POLICIES`): appended (LST; flood on its history path), a yearly
product's year kept or refreshed (`geoproc.products.yearly_refresh`), else a full rewrite,
written beside the old store and switched in one step (`geoproc.store_switch`), so readers
never find the store missing or half-written.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr

from geoproc import __version__, storage, store_lock, store_switch, zarr_layout
from geoproc.cube.per_step_attrs import select_steps
from geoproc.errors import NoDataError, StoreError
from geoproc.inference import product_stage
from geoproc.product_registry import product_package
from geoproc.products import blocking_of, stage_blocking, yearly_refresh

log = logging.getLogger(__name__)

MARKER = "geoproc-product.json"
_OPTICAL = ("L30", "S30", "S2", "LC2")
_THERMAL = ("L30", "LC2")
"""Platform groups with a thermal band: HLS L30 and Landsat Collection 2 Level-2."""


@dataclass(frozen=True)
class ProductResult:
    """What one (product, tile) run did."""

    product: str
    tile: str
    store: str
    status: str
    """`written`, `appended`, `skipped` (store unchanged: inputs unchanged, or a yearly
    product's year only a few dates behind, see ``update``) or `no data`."""
    steps: int
    fingerprint: str
    mode: str = "tile"
    """How the stage cut the cube: `tile`, `space` (spatial blocks) or `time` (date groups)."""
    update: str = ""
    """What a new date did to older ones, for the run report (e.g. flood's reference drift)."""
    reference_drift: float | None = None
    """Share of known-reference pixels whose reference changed with the new dates (flood)."""


def product_module(name: str):
    """The module of a product (`geoproc.products.flood`, ...)."""
    return product_package(name)


def product_location(out: str | storage.Location, product: str, tile: str) -> storage.Location:
    root = out if isinstance(out, storage.Location) else storage.parse_url(out)
    return root.join("products", product, f"{tile}.zarr")


def open_cube(cube_url: str | storage.Location, *, dask: bool = True) -> xr.Dataset:
    """The cube's complete time steps, lazily (incomplete steps are never used).

    ``dask=False`` opens lazy backend arrays instead of a Dask graph: slicing a block then
    reads just the chunks it touches, with no graph of (dates x bands) tasks per block."""
    try:
        ds = xr.open_zarr(
            storage.zarr_store(cube_url, read_only=True),
            consolidated=True,
            **({} if dask else {"chunks": None}),
        )
    except (FileNotFoundError, KeyError) as exc:
        raise StoreError(
            f"No cube store at {storage.parse_url(str(cube_url)).url if not isinstance(cube_url, storage.Location) else cube_url.url}: build it first with `geoproc cube build`."
        ) from exc
    complete = ds["time_complete"].values.astype(bool)
    return select_steps(ds, np.flatnonzero(complete))


def refuse_damaged_cube(cube_url: str | storage.Location) -> None:
    """Fail with the steps to repair before a product reads a damaged cube.

    Why: a truncated chunk otherwise surfaces as a decode error deep inside a product (a
    traceback), or worse, as a silently short series. The quick check is one listing of the
    store (`geoproc.cube.verify`); the cube build repairs what it names.
    """
    from geoproc.cube.verify import verify_cube

    location = cube_url if isinstance(cube_url, storage.Location) else storage.parse_url(cube_url)
    report = verify_cube(location, level="quick")
    if report.ok:
        return
    named = [f"step {i}: {reasons[0]}" for i, reasons in sorted(report.damaged.items())[:3]]
    named += [f"{v}: array metadata missing" for v in report.metadata_missing[:3]]
    raise StoreError(
        f"The cube {location.url} is damaged ({'; '.join(named)}): rerun `geoproc cube build` "
        f"(or `geoproc run`) with the same arguments to repair it; `geoproc verify "
        f"{location.url}` lists every damaged step."
    )


def select_inputs(cube: xr.Dataset, product: str) -> xr.Dataset:
    """The time steps and variables a product reads."""
    platform = cube["platform"].values.astype(str)
    if product == "lst":
        keep = np.isin(platform, _THERMAL)
    elif product == "canopy":
        keep = np.isin(platform, _OPTICAL)
    else:
        keep = np.ones(platform.shape, bool)
    selected = select_steps(cube, np.flatnonzero(keep))
    drop = [v for v in ("time_complete",) if v in selected]
    return selected.drop_vars(drop)


def _fingerprint(cube: xr.Dataset, product: str, spec_version: str, options: dict) -> str:
    sources = cube.attrs.get("geoproc:source_items", [])
    versions = cube.attrs.get("geoproc:source_versions", [])
    payload = {
        "product": product,
        "version": spec_version,
        "software": __version__,
        "options": options,
        "times": [str(t) for t in cube["time"].values],
        "platforms": cube["platform"].values.astype(str).tolist(),
        "sources": sources,
        "versions": versions,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _blocked_inputs(cube_url: str | storage.Location, product: str) -> xr.Dataset:
    """The product's declared inputs, lazily without Dask (picklable entry for workers)."""
    module = product_module(product)
    return product_stage.declared_inputs(
        select_inputs(open_cube(cube_url, dask=False), product), module.SPEC
    )


def _base_fingerprint(product: str, module, options: dict) -> str:
    """What besides the dates decides a product's outputs: product, version, options."""
    payload = {
        "product": product,
        "version": module.SPEC.version,
        "software": __version__,
        "options": options,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _history(inputs: xr.Dataset, full: xr.Dataset) -> dict:
    """The dates a product run reads, their source items and item versions, for the marker."""
    return {
        "times": [str(t) for t in inputs["time"].values],
        "sources": _source_items_for(inputs, full.attrs, full["time"].values),
        "versions": _source_items_for(
            inputs, full.attrs, full["time"].values, attr="geoproc:source_versions"
        ),
    }


def _appendable(
    marker,
    history: dict,
    product: str,
    module,
    options: dict,
    mode: str,
    variables: tuple[str, ...] = (),
) -> int:
    """How many dates a run may append to the existing store instead of rewriting it (0: no).

    Only for products declared incremental (a date's outputs never depend on other dates)
    run by date groups, or declared ``incremental="history"`` run in spatial blocks, when
    the store's dates, their sources and the sources' versions are an unchanged prefix of
    the cube's (a reprocessed item keeps its id, not its version) and the product, version
    and options are the same."""
    if not marker or not blocking_of(module.SPEC).appends(mode, options, variables):
        return 0
    if marker.get("base") != _base_fingerprint(product, module, options):
        return 0
    old_times, old_sources = marker.get("times") or [], marker.get("sources")
    n = len(old_times)
    if not n or history["times"][:n] != old_times or history["sources"][:n] != old_sources:
        return 0
    if history["versions"][:n] != marker.get("versions"):
        return 0  # an old date's item was reprocessed (or the marker predates versions)
    if len(history["times"]) <= n or history["times"][n] <= old_times[-1]:
        return 0
    return len(history["times"]) - n


def _write_marker(
    location,
    fingerprint: str,
    steps: int,
    product: str,
    history,
    options,
    *,
    computed_years: dict[str, int] | None = None,
) -> None:
    """Written after the data: its presence means the store is complete for `fingerprint`.

    ``computed_years``: the dates per year the stored outputs were computed with (yearly
    products keep a year that is only a few dates behind, `yearly_refresh`); by default
    those of every date in ``history``."""
    module = product_module(product)
    storage.write_bytes_atomic(
        location.join(MARKER),
        json.dumps(
            {
                "fingerprint": fingerprint,
                "steps": steps,
                "product": product,
                "base": _base_fingerprint(product, module, options),
                "computed_years": computed_years or yearly_refresh.dates_per_year(history["times"]),
                **history,
            },
            sort_keys=True,
            default=str,
        ).encode(),
    )


def _read_marker(location: storage.Location) -> dict | None:
    try:
        return json.loads(storage.read_bytes(location.join(MARKER)))
    except (FileNotFoundError, ValueError, OSError):
        return None


def _source_items_for(
    cube: xr.Dataset,
    full_cube_attrs: dict,
    full_times: np.ndarray,
    *,
    attr: str = "geoproc:source_items",
) -> list:
    """The per-step attribute `attr` of the full cube, aligned with `cube`'s time steps."""
    sources = full_cube_attrs.get(attr, [])
    if len(sources) != len(full_times):
        return []
    index = {str(t): s for t, s in zip(full_times, sources, strict=True)}
    return [index.get(str(t), []) for t in cube["time"].values]


def run_product_on_cube(
    product: str,
    cube_url: str | storage.Location,
    out: str | storage.Location,
    *,
    tile: str,
    options: dict[str, Any] | None = None,
    blocking: str | None = None,
    block_memory_bytes: int = product_stage.DEFAULT_BLOCK_BYTES,
    client=None,
) -> ProductResult:
    """Compute `product` from one tile's cube and write its product store (idempotent).

    ``blocking``: `tile` forces the whole-tile path, `space`/`time` a blocked one; None takes
    the product's declaration (`geoproc.products.stage_blocking`). ``block_memory_bytes``
    bounds the working set of one block. ``client``: a `distributed.Client` whose workers
    run groups of blocks (blocked modes only; the whole-tile path stays in this process).
    """
    location = product_location(out, product, tile)
    with store_lock.hold(location, what="product run"):  # one writer per product store
        return _run_product_unlocked(
            product, cube_url, out, tile=tile, options=options, blocking=blocking,
            block_memory_bytes=block_memory_bytes, client=client,
        )  # fmt: skip


def _run_product_unlocked(
    product: str,
    cube_url: str | storage.Location,
    out: str | storage.Location,
    *,
    tile: str,
    options: dict[str, Any] | None = None,
    blocking: str | None = None,
    block_memory_bytes: int = product_stage.DEFAULT_BLOCK_BYTES,
    client=None,
) -> ProductResult:
    """Body of `run_product_on_cube`, called with the store's lock held."""
    module = product_module(product)
    options = dict(options or {})
    full = open_cube(cube_url)
    inputs = select_inputs(full, product)
    location = product_location(out, product, tile)
    fingerprint = _fingerprint(inputs, product, module.SPEC.version, options)
    if inputs.sizes.get("time", 0) == 0:
        return ProductResult(product, tile, location.url, "no data", 0, fingerprint)
    marker = _read_marker(location)
    if marker and marker.get("fingerprint") == fingerprint:
        log.info("%s %s: inputs unchanged, skipped", product, tile)
        return ProductResult(
            product, tile, location.url, "skipped", int(marker.get("steps", 0)), fingerprint
        )

    refuse_damaged_cube(cube_url)
    mode = blocking or stage_blocking(module, tuple(map(str, inputs.data_vars)), options)
    history = _history(inputs, full)
    variables = tuple(map(str, inputs.data_vars))
    new_steps = _appendable(marker, history, product, module, options, mode, variables)
    update, drift, refresh = "", None, None
    declared = blocking_of(module.SPEC)
    if new_steps and declared.incremental == "yearly":
        refresh = yearly_refresh.decide(
            marker.get("computed_years") or {},
            yearly_refresh.dates_per_year(history["times"]),
            refresh_fraction=declared.refresh_fraction,
        )
        if not refresh.recompute:
            log.info("%s %s: %s", product, tile, refresh.update)
            steps = int(marker.get("steps", 0))
            _write_marker(
                location, fingerprint, steps, product, history, options,
                computed_years=marker.get("computed_years"),
            )  # fmt: skip
            return ProductResult(
                product, tile, location.url, "skipped", steps, fingerprint, mode, refresh.update
            )
        update, new_steps = refresh.update, 0
    if new_steps and declared.incremental == "history":
        kept, drift, update = product_stage.append_with_history(
            module,
            select_steps(
                product_stage.declared_inputs(
                    select_inputs(open_cube(cube_url, dask=False), product), module.SPEC
                ),
                slice(len(history["times"]) - new_steps, None),
            ),
            location,
            n_old=len(history["times"]) - new_steps,
            options=options,
            attrs={
                "geoproc:source_items": history["sources"],
                "geoproc:input_fingerprint": fingerprint,
            },
            history_outputs=blocking_of(module.SPEC).history_outputs,
            budget_bytes=block_memory_bytes,
        )
        log.info("%s %s: %s", product, tile, update)
        if kept:
            _write_marker(location, fingerprint, len(history["times"]), product, history, options)
            return ProductResult(
                product, tile, location.url, "appended", new_steps, fingerprint, mode, update, drift
            )
        new_steps = 0  # the drift guard: every date is recomputed below
    if new_steps:
        added = product_stage.append_dates(
            module,
            select_steps(
                product_stage.declared_inputs(
                    select_inputs(open_cube(cube_url, dask=False), product), module.SPEC
                ),
                slice(len(history["times"]) - new_steps, None),
            ),
            location,
            options=options,
            attrs={
                "geoproc:source_items": history["sources"],
                "geoproc:input_fingerprint": fingerprint,
            },
            budget_bytes=block_memory_bytes,
            n_old=len(history["times"]) - new_steps,
        )
        _write_marker(location, fingerprint, len(history["times"]), product, history, options)
        log.info("%s %s: %d new date(s) appended, older dates kept", product, tile, added)
        return ProductResult(product, tile, location.url, "appended", added, fingerprint, "time")
    # A yearly refresh in spatial blocks on local disk recomputes the due years only and
    # copies the others from the old store, which stays in place until the commit.
    partial = refresh is not None and refresh.recompute
    why_full = _why_full_refresh(mode, location) if partial else None
    staged = store_switch.staging(location)  # readers keep the old version meanwhile
    computed_years = None
    if mode == "tile":
        result = module.run(inputs.load(), **options)
        result = _finish_attrs(
            result, full, inputs, product, module, options, cube_url, fingerprint
        )
        steps = int(result.sizes.get("time", result.sizes.get("year", 1)))
        if not any(result[v].size for v in result.data_vars):
            raise NoDataError(f"{product} produced no pixels for tile {tile}.")
        _write_store(result, staged)
    else:
        run = functools.partial(
            product_stage.run_blocked,
            module,
            product_stage.declared_inputs(
                select_inputs(open_cube(cube_url, dask=False), product), module.SPEC
            ),
            staged,
            mode=mode,
            options=options,
            finish=lambda r: _finish_attrs(
                r, full, inputs, product, module, options, cube_url, fingerprint
            ),
            budget_bytes=block_memory_bytes,
            client=client,
            open_inputs=functools.partial(_blocked_inputs, cube_url, product),
        )
        template = None
        if partial and why_full is None:
            computed = marker.get("computed_years") or {}
            now = yearly_refresh.dates_per_year(history["times"])
            try:
                template = run(years={int(y) for y in refresh.due}, copy_from=location)
            except yearly_refresh.PartialRefreshUnavailable as exc:
                why_full = str(exc)
            else:
                computed_years = yearly_refresh.refreshed_counts(computed, now, refresh.due)
                update = yearly_refresh.partial_update(refresh, computed, now)
        if template is None:
            template = run()
        steps = int(template.sizes.get("time", template.sizes.get("year", 1)))
    if partial and why_full is not None:
        update = yearly_refresh.full_update(
            refresh, yearly_refresh.dates_per_year(history["times"]), why_full
        )
    if update:
        log.info("%s %s: %s", product, tile, update)
    store_switch.commit(staged, location)
    _write_marker(
        location, fingerprint, steps, product, history, options, computed_years=computed_years
    )
    return ProductResult(
        product, tile, location.url, "written", steps, fingerprint, mode, update, drift
    )


def _why_full_refresh(mode: str, location: storage.Location) -> str | None:
    """Why a yearly refresh must recompute every year, not only the due ones (None: it
    need not): only the blocked path runs year by year, and only on local disk does the
    old store stay readable beside the staged one. The old store may have been written by
    the whole-tile path: its bytes are the blocked path's (`test_product_stage`), and
    `yearly_refresh.copy_years` refuses arrays whose layout differs."""
    if mode != "space":
        return f"this run cuts the cube as {mode!r}, not in spatial blocks per year"
    if location.scheme != "file":
        return "on object storage the new version is written in place of the old"
    return None


def _finish_attrs(
    result, full, inputs, product, module, options, cube_url, fingerprint
) -> xr.Dataset:
    crs = full.rio.crs
    if crs is not None and result.rio.crs is None:
        result = result.rio.write_crs(crs)
    if "time" in result.dims:
        if "platform" not in result.coords and "platform" in inputs.coords:
            result = result.assign_coords(platform=("time", inputs["platform"].values.astype(str)))
        result.attrs["geoproc:source_items"] = _source_items_for(
            result, full.attrs, full["time"].values
        )
    else:
        result.attrs["geoproc:source_items"] = [
            s for s in inputs.attrs.get("geoproc:source_items", [])
        ]
    for name in result.data_vars:
        result[name].attrs["grid_mapping"] = "spatial_ref"
    result.attrs.update(
        {
            "product": product,
            "algorithm_version": module.SPEC.version,
            "method": module.SPEC.method,
            "geoproc:software_version": __version__,
            "geoproc:parameters": json.dumps(options, sort_keys=True, default=str),
            "geoproc:input_fingerprint": fingerprint,
            "source_cube": storage.parse_url(str(cube_url)).url
            if not isinstance(cube_url, storage.Location)
            else cube_url.url,
            "Conventions": "CF-1.8",
        }
    )
    return result


def _write_store(result: xr.Dataset, location: storage.Location) -> None:
    """Template-free whole write: chunks of one time step, (y, x) blocks of 512, in the
    GDAL-readable layout (`geoproc.zarr_layout`)."""
    chunks = {d: (1 if d in ("time", "year") else min(512, n)) for d, n in result.sizes.items()}
    result = zarr_layout.with_compressor(zarr_layout.gdal_readable(result)).chunk(chunks)
    for name in result.variables:
        result[name].encoding.pop("chunks", None)
        result[name].encoding.pop("preferred_chunks", None)
    fs, path = storage.filesystem(location)
    if fs.exists(path):
        fs.rm(path, recursive=True)
    result.to_zarr(storage.zarr_store(location), mode="w", **zarr_layout.to_zarr_kwargs())
