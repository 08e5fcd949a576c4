"""The stages of one run, as plain library calls: plan, search, cube, products, publish, report.

`run_pipeline` calls them in order in one process; the Prefect flows in `flows/` call the
very same functions, one task per stage and tile, so the CLI and the scheduled runs
cannot drift apart. Arrays move through the Zarr stores, never through return values:
every stage returns small JSON-able records.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, Protocol

from geoproc import __version__, dask_exec, run_report, storage, zarr_layout
from geoproc.catalog.search import SearchResult, TimeStep, search_tiles
from geoproc.cube.assemble import CubeOptions
from geoproc.cube.store import build_parameters, build_tile_store, cube_location
from geoproc.errors import GeoprocError, NoDataError
from geoproc.grid import Tile, tiles_for_aoi
from geoproc.product_runner import product_location, run_product_on_cube
from geoproc.products import update_policy
from geoproc.progress import NoProgress, Progress
from geoproc.request import RunRequest, check_catalog
from geoproc.storage import Location

log = logging.getLogger(__name__)

DEFAULT_PRODUCT_OPTIONS: dict[str, dict[str, Any]] = {
    "flood": {},
    "lst": {},
    "canopy": {"all_probabilities": True},
}


def run_id_for(request: RunRequest) -> str:
    """A run id derived from the request, so rerunning the same request rewrites the same bytes."""
    payload = json.dumps(
        {
            "products": request.products,
            "aoi": str(request.aoi),
            "start": str(request.start),
            "end": str(request.end),
            "collections": request.collections,
            "options": request.options,
        },
        sort_keys=True,
        default=str,
    )
    return f"{request.end:%Y%m%d}-{hashlib.sha256(payload.encode()).hexdigest()[:10]}"


def plan(request: RunRequest) -> list[Tile]:
    """Processing tiles covering the AOI (one UTM zone each)."""
    return tiles_for_aoi(
        request.aoi,
        tile_size_px=int(request.options.get("tile_size_px", 1024)),
        resolution=float(request.options.get("resolution", 30.0)),
    )


def search(request: RunRequest, tiles: list[Tile]) -> SearchResult:
    """Items per tile and time step, with the record of what was dropped and why."""
    check_catalog(request.catalog)
    return search_tiles(
        request.catalog,
        tiles,
        collections=request.collections,
        start=request.start,
        end=request.end,
        max_cloud_cover=float(request.options.get("max_cloud_cover", 80.0)),
    )


def cube_options(request: RunRequest) -> CubeOptions:
    return CubeOptions(**request.options.get("cube", {}))


def build_cube(request: RunRequest, tile: Tile, steps: list[TimeStep]) -> dict:
    """Create or extend one tile's cube store; returns the tile's build record."""
    options = cube_options(request)
    names, qas, parameters = build_parameters(
        request.collections,
        options=options,
        start=request.start,
        end=request.end,
        max_cloud_cover=float(request.options.get("max_cloud_cover", 80.0)),
    )
    result = build_tile_store(
        request.out.url,
        tile,
        steps,
        band_names=names,
        qa_vars=qas,
        options=options,
        parameters=parameters,
        verify=str(request.options.get("verify", "quick")),
    )
    return asdict(result)


def run_product(request: RunRequest, product: str, tile_id: str) -> dict:
    """One product on one tile's cube; skipped when its inputs are unchanged."""
    options = {**DEFAULT_PRODUCT_OPTIONS.get(product, {}), **request.options.get(product, {})}
    result = run_product_on_cube(
        product, cube_location(request.out.url, tile_id), request.out, tile=tile_id, options=options
    )
    return asdict(result)


def timeseries_location(out: Location, store: str, tile_id: str) -> Location:
    """Where the time-chunked copy of a store lives: ``timeseries/cubes/<tile>.zarr`` or
    ``timeseries/products/<product>/<tile>.zarr``, beside the stores it copies."""
    return out.join("timeseries", *store.split("/"), f"{tile_id}.zarr")


def update_timeseries_copies(request: RunRequest, tile_id: str) -> dict:
    """Create or extend the time-chunked copies of one tile's cube and product stores.

    Only with the request option ``timeseries_time_chunk`` (``--timeseries-copy``): analysts
    reading one pixel's year read a few objects instead of one per date (`geoproc bench
    timeseries`). `rechunk_store` appends only the dates the copy lacks and resumes after a
    crash, so a scheduled run keeps the copies current at the cost of the new dates.
    """
    from geoproc.timeseries.rechunk import rechunk_store

    chunk = request.options["timeseries_time_chunk"]
    sources = {"cubes": cube_location(request.out.url, tile_id)}
    for product in request.products:
        sources[f"products/{product}"] = product_location(request.out, product, tile_id)
    record: dict[str, str] = {}
    for store, source in sources.items():
        if not zarr_layout.is_store(source):
            continue  # no store for this tile (no data, or the product failed): nothing to copy
        try:
            result = rechunk_store(
                source.url,
                timeseries_location(request.out, store, tile_id).url,
                time_chunk=None if chunk == "all" else int(chunk),
            )
        except GeoprocError as exc:  # the stores are done: report the copy, keep the run's work
            log.warning("time-series copy of %s/%s failed: %s", store, tile_id, exc)
            record[store] = f"failed: {exc} (set by the run's --timeseries-copy)"
            continue
        record[store] = result.status
    return record


def dispatch_build_cube(
    request: RunRequest, tile: Tile, steps: list[TimeStep], dask_address: str | None = None
) -> dict:
    """`build_cube` in this process, or as one task on the Dask scheduler at `dask_address`.

    The record gains `seconds` (wall time of the call, for the run report).
    """
    t0 = time.perf_counter()
    if dask_address:
        record = dask_exec.build_cube_on(dask_address, request, tile, steps)
    else:
        record = build_cube(request, tile, steps)
    return {**record, "seconds": round(time.perf_counter() - t0, 2)}


def dispatch_run_product(
    request: RunRequest, product: str, tile_id: str, dask_address: str | None = None
) -> dict:
    """`run_product` in this process, or as one task on the Dask scheduler at `dask_address`."""
    t0 = time.perf_counter()
    if dask_address:
        record = dask_exec.run_product_on(dask_address, request, product, tile_id)
    else:
        record = run_product(request, product, tile_id)
    return {**record, "seconds": round(time.perf_counter() - t0, 2)}


def publish(request: RunRequest, run_id: str) -> dict:
    """COGs, web tiles, viewer and STAC catalog for every product store of the output."""
    from geoproc.publish import publish_run

    return publish_run(
        request.out.url,
        products=list(request.products),
        run_id=run_id,
        aoi=request.aoi,
        source_catalog=None if _is_loopback(request.catalog) else request.catalog,
    )


def _is_loopback(url: str) -> bool:
    """A catalog on loopback (the embedded sample API) dies with the run: never link to it.

    Its port also changes per run, so links to it would make reruns write different bytes;
    the source item ids stay in `geoproc:source_items`.
    """
    from urllib.parse import urlparse

    return (urlparse(url).hostname or "") in ("127.0.0.1", "localhost", "::1")


def request_record(request: RunRequest) -> dict:
    """The request as plain JSON for the run report."""
    return {
        "products": list(request.products),
        "aoi": str(request.aoi),
        "start": str(request.start),
        "end": str(request.end),
        "catalog": request.catalog,
        "out": request.out.url,
        "collections": list(request.collections),
    }


def summarise_run(
    request: RunRequest,
    run_id: str,
    *,
    found: SearchResult,
    cubes: dict[str, dict],
    products: dict[str, dict],
    timings: dict[str, float],
    published: dict | None = None,
    links: dict[str, str] | None = None,
) -> dict:
    """The regional run's report: inputs, masked fraction of the new dates, records, timings, links."""
    failed = [k for k, v in {**cubes, **products}.items() if v.get("status") == "failed"]
    report: dict[str, Any] = {
        "run_id": run_id,
        "kind": "regional",
        "status": "partial" if failed else "complete",
        "software_version": __version__,
        "request": request_record(request),
        "search": {
            "found": found.found,
            "dropped": len(found.dropped) + sum(len(ts.dropped) for ts in found.tiles.values()),
            "steps_per_tile": {tid: len(ts.steps) for tid, ts in found.tiles.items()},
        },
        "inputs": run_report.inputs_summary(found),
        "cubes": cubes,
        "masked_fraction": {
            tid: run_report.masked_fractions(
                request.out.url, tid, steps=list(rec.get("steps_written", []))
            )
            for tid, rec in cubes.items()
            if rec.get("steps_written")
        },
        "products": products,
        "product_steps_computed": {
            k: v.get("steps", 0)
            for k, v in products.items()
            if v.get("status") in ("written", "appended")
        },
        "product_update_policy": {p: update_policy(p) for p in request.products},
        "timings_s": {k: round(v, 2) for k, v in timings.items()},
        "links": run_report.links(published=published is not None, extra=links),
        "tiles": run_report.tile_outlines(ts.tile for ts in found.tiles.values()),
    }
    if published is not None:
        report["publish"] = published
    return report


def write_report(request: RunRequest, run_id: str, report: dict) -> str:
    """Run report at `{out}/runs/{run_id}/report.json` and `report.html`; returns the JSON URL."""
    return run_report.write_run_report(request.out, run_id, report)["json"]


class Executor(Protocol):
    """Runs one stage's calls: in this process, as Prefect tasks (`flows/`), or on Dask.

    ``stage`` names the stage (`plan-and-search`, `build-cube`, `run-product`, `publish`,
    `write-report`) so an executor can attach its retries, tags and limits; the results
    come back in the order of ``calls``. The stage logic (what to run, in what order,
    which errors) stays in `run_pipeline`, so every executor runs the same pipeline.
    """

    def map(self, stage: str, fn: Callable[..., Any], calls: list[tuple]) -> list: ...


class InProcess:
    """Every call in this process, one after the other (the CLI's executor)."""

    def map(self, stage: str, fn: Callable[..., Any], calls: list[tuple]) -> list:
        return [fn(*args) for args in calls]


def run_pipeline(
    request: RunRequest,
    *,
    run_id: str | None = None,
    publish_outputs: bool = True,
    dask_address: str | None = None,
    progress: Progress | None = None,
    executor: Executor | None = None,
    links: dict[str, str] | None = None,
) -> dict:
    """Every stage in order for every tile; returns the run report (also written to the store).

    ``executor`` runs the stages' calls (default: in this process); with ``dask_address``
    each cube build and product run executes as one task on that Dask scheduler, and Dask's
    performance report of those stages is linked from the run report. ``links`` adds links
    to the report as plain data (the Prefect flow run's page, from `flows/`). Tiles with
    a cube but no new scenes still get their products (skipped when unchanged); a request
    for which no tile has a cube or a scene raises `NoDataError`, whatever the executor.
    """
    executor = executor or InProcess()
    progress = progress or NoProgress()
    run_id = run_id or run_id_for(request)
    timings: dict[str, float] = {}
    if dask_address:
        progress.message(f"Dask dashboard: {dask_exec.dashboard_link(dask_address) or 'none'}")
    t0 = time.perf_counter()
    tiles = plan(request)  # pure and cheap: the plan is shown before the catalog is asked
    progress.message(f"plan: {len(tiles)} tile(s): {', '.join(t.id for t in tiles)}")
    [found] = executor.map("plan-and-search", search, [(request, tiles)])
    timings["search"] = time.perf_counter() - t0
    progress.message(
        f"search: {found.found} items, "
        + ", ".join(f"{tid}: {len(ts.steps)} steps" for tid, ts in found.tiles.items())
    )

    perf = dask_exec.PerformanceReport(request.out.join("runs", run_id), dask_address).start()
    t0 = time.perf_counter()
    cubes: dict[str, dict] = {}
    todo = []
    for tile in tiles:
        steps = found.tiles[tile.id].steps
        if not steps and not storage.exists(cube_location(request.out.url, tile.id)):
            cubes[tile.id] = {"status": "no data"}
        else:
            todo.append(tile)
    progress.stage("cubes (time steps)", sum(len(found.tiles[t.id].steps) for t in tiles))
    records = executor.map(
        "build-cube",
        dispatch_build_cube,
        [(request, t, found.tiles[t.id].steps, dask_address) for t in todo],
    )
    built: list[str] = []
    for tile, record in zip(todo, records, strict=True):
        cubes[tile.id] = record
        built.append(tile.id)
        progress.advance(
            f"{tile.id}: {len(record['steps_written'])} written, {record['steps_skipped']} already complete",
            n=len(found.tiles[tile.id].steps),
        )
    progress.close()
    timings["cube"] = time.perf_counter() - t0
    if not built:
        raise NoDataError(
            f"The catalog returned no usable scenes between {request.start} and {request.end} over "
            f"{len(tiles)} tile(s): widen --start/--end or --aoi, or check --collections."
        )

    products: dict[str, dict] = {}
    progress.stage("products (product x tile)", len(request.products) * len(built))
    for product in request.products:  # products in turn, tiles in parallel: a time per product
        t0 = time.perf_counter()
        records = executor.map(
            "run-product",
            dispatch_run_product,
            [(request, product, tile_id, dask_address) for tile_id in built],
        )
        for tile_id, record in zip(built, records, strict=True):
            products[f"{product}/{tile_id}"] = record
            progress.advance(f"{product} {tile_id}: {record['status']} ({record['steps']} step(s))")
        timings[f"product:{product}"] = time.perf_counter() - t0
    progress.close()
    links = {**(links or {}), **perf.finish()}

    timeseries: dict[str, dict] = {}
    if request.options.get("timeseries_time_chunk") is not None:
        t0 = time.perf_counter()
        records = executor.map(
            "timeseries-copy", update_timeseries_copies, [(request, t) for t in built]
        )
        timeseries = dict(zip(built, records, strict=True))
        timings["timeseries"] = time.perf_counter() - t0
        progress.message(f"timeseries: {sum(len(r) for r in records)} copies up to date")

    published = None
    if publish_outputs:
        t0 = time.perf_counter()
        [published] = executor.map("publish", publish, [(request, run_id)])
        timings["publish"] = time.perf_counter() - t0
        progress.message("publish: done")
    report = summarise_run(
        request,
        run_id,
        found=found,
        cubes=cubes,
        products=products,
        timings=timings,
        published=published,
        links=links,
    )
    if timeseries:
        report["timeseries_copies"] = timeseries
    [report["report_url"]] = executor.map("write-report", write_report, [(request, run_id, report)])
    return report
