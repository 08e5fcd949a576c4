"""Backfills: a long date range over many tiles, split into work units of tile x period.

Units of one tile run in date order, because a cube only ever appends later time steps;
tiles run in parallel as Dask tasks (a LocalCluster by default, or any scheduler address).
Whether a unit is done is judged from the cube store itself — every time step the catalog
holds for the unit is marked complete there — never from an orchestrator's cache, so a
backfill survives a lost Prefect database and a rerun does only the remaining units.
A unit that fails stops the later units of its tile (their dates could no longer be
appended before it) and is reported; other tiles carry on and the run ends `partial`.
"""

from __future__ import annotations

import logging
import time
import traceback
from dataclasses import dataclass, replace
from datetime import date, timedelta

from geoproc import __version__, pipeline, run_report, storage, zarr_layout
from geoproc.cube.store import completed_step_keys, cube_location
from geoproc.errors import GeoprocError, UsageError
from geoproc.grid import Tile
from geoproc.progress import NoProgress, Progress
from geoproc.request import RunRequest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkUnit:
    """One tile over one period (inclusive dates)."""

    tile: str
    start: date
    end: date

    @property
    def key(self) -> str:
        return f"{self.tile}:{self.start}:{self.end}"


def periods(start: date, end: date, *, months: int) -> list[tuple[date, date]]:
    """Consecutive periods of `months` calendar months covering [start, end] (the first may be short)."""
    if months < 1:
        raise UsageError(f"--period-months {months} must be 1 or more.")
    out = []
    cursor = start
    while cursor <= end:
        month_index = cursor.year * 12 + cursor.month - 1 + months
        nxt = date(month_index // 12, month_index % 12 + 1, 1)
        out.append((cursor, min(end, nxt - timedelta(days=1))))
        cursor = nxt
    return out


def plan_units(request: RunRequest, *, period_months: int = 3) -> tuple[list[Tile], list[WorkUnit]]:
    tiles = pipeline.plan(request)
    spans = periods(request.start, request.end, months=period_months)
    return tiles, [WorkUnit(t.id, s, e) for t in tiles for s, e in spans]


def _completed_keys(request: RunRequest, tile_id: str) -> set[tuple[int, str]]:
    location = cube_location(request.out.url, tile_id)
    if not zarr_layout.is_store(location):
        return set()
    return completed_step_keys(location)


def run_unit(request: RunRequest, tile: Tile, unit: WorkUnit) -> dict:
    """Search the unit's period for its tile and append what the cube lacks."""
    window = replace(request, start=unit.start, end=unit.end)
    t0 = time.perf_counter()
    found = pipeline.search(window, [tile])
    steps = found.tiles[tile.id].steps
    searched = {
        "inputs": run_report.inputs_summary(found),
        "search_s": round(time.perf_counter() - t0, 2),
    }
    done = _completed_keys(request, tile.id)
    if all(s.key in done for s in steps):
        return {"unit": unit.key, "status": "skipped", "steps": len(steps), **searched}
    t0 = time.perf_counter()
    record = pipeline.build_cube(request, tile, steps)
    return {
        "unit": unit.key,
        "status": "done",
        "steps": len(steps),
        "steps_written": len(record["steps_written"]),
        "steps_written_labels": list(record["steps_written"]),
        "asset_errors": record.get("asset_errors", []),
        "steps_repaired": record.get("steps_repaired", []),
        "steps_damaged": record.get("steps_damaged", []),
        "cube_s": round(time.perf_counter() - t0, 2),
        **searched,
    }


def run_unit_after(previous: dict | None, request: RunRequest, tile: Tile, unit: WorkUnit) -> dict:
    """A unit once the tile's previous unit has finished; blocked if that one did not succeed.

    One Dask task per unit (key `geoproc-backfill-unit-*`), chained per tile, so the
    client sees every unit finish (progress, crash tests) while a tile's units stay in
    date order. Failures become records, never exceptions, so the chain goes on.
    """
    if previous is not None and previous["status"] in ("failed", "blocked"):
        after = previous["unit"] if previous["status"] == "failed" else previous["after"]
        return {
            "unit": unit.key,
            "status": "blocked",
            "after": after,
            "reason": f"after failed unit {after}",
        }
    t0 = time.perf_counter()
    try:
        record = run_unit(request, tile, unit)
    except GeoprocError as exc:
        record = {"unit": unit.key, "status": "failed", "reason": str(exc)}
    except Exception as exc:  # noqa: BLE001 - a unit's crash is reported, not fatal to the run
        log.error("unit %s failed:\n%s", unit.key, traceback.format_exc())
        record = {"unit": unit.key, "status": "failed", "reason": f"{type(exc).__name__}: {exc}"}
    return {**record, "seconds": round(time.perf_counter() - t0, 2)}


def run_tile_units(request: RunRequest, tile: Tile, units: list[WorkUnit]) -> list[dict]:
    """A tile's units in date order, in this process; the first failure blocks the later ones."""
    results: list[dict] = []
    for unit in sorted(units, key=lambda u: u.start):
        results.append(run_unit_after(results[-1] if results else None, request, tile, unit))
    return results


def _client(dask_address: str | None, workers: int):
    from distributed import Client, LocalCluster

    if dask_address:
        from geoproc.dask_exec import CONNECT_TIMEOUT_S, share_credentials

        try:
            client = Client(dask_address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise UsageError(
                f"--dask-address {dask_address}: no Dask scheduler answered ({type(exc).__name__}): "
                "start one (`dask scheduler`) or pass the right address."
            ) from exc
        share_credentials(client)  # a remote cluster's workers do not share our environment
        return client, None
    cluster = LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0"
    )
    return Client(cluster, set_as_default=False), cluster


def run_backfill(
    request: RunRequest,
    *,
    period_months: int = 3,
    workers: int = 2,
    dask_address: str | None = None,
    publish_outputs: bool = False,
    run_products: bool = True,
    progress: Progress | None = None,
    links: dict[str, str] | None = None,
) -> dict:
    """Every unit of the request on Dask; products for tiles whose units all succeeded.

    The report links Dask's performance report of the units and products, and ``links``
    (plain data: the Prefect flow run's page, from `flows/backfill.py`).
    """
    from distributed import as_completed

    from geoproc.dask_exec import PerformanceReport, dashboard_of, task_key
    from geoproc.request import check_catalog

    if workers < 1:
        raise UsageError(f"--workers {workers} must be 1 or more.")
    progress = progress or NoProgress()
    check_catalog(request.catalog)
    tiles, units = plan_units(request, period_months=period_months)
    by_tile = {
        t.id: sorted((u for u in units if u.tile == t.id), key=lambda u: u.start) for t in tiles
    }
    timings: dict[str, float] = {}
    client, cluster = _client(dask_address, workers)
    run_id = pipeline.run_id_for(request)
    perf = PerformanceReport(request.out.join("runs", f"backfill-{run_id}")).start(client)
    try:
        progress.message(
            f"Dask dashboard: {dashboard_of(client) or 'none (scheduler without one)'}"
        )
        t0 = time.perf_counter()
        unit_futures = {}
        for tile in tiles:
            previous = None
            for unit in by_tile[tile.id]:
                previous = client.submit(
                    run_unit_after, previous, request, tile, unit,
                    key=task_key("geoproc-backfill-unit", tile.id), pure=False,
                )  # fmt: skip
                unit_futures[unit.key] = previous
        progress.stage("backfill units", len(unit_futures))
        finished: dict[str, dict] = {}
        unit_of = {f: key for key, f in unit_futures.items()}
        for future in as_completed(list(unit_futures.values()), loop=client.loop):
            try:
                record = future.result()
            except Exception as exc:  # noqa: BLE001 - a lost worker fails the unit, not the run
                record = {
                    "unit": unit_of[future],
                    "status": "failed",
                    "reason": f"{type(exc).__name__}: {exc}",
                }
            finished[record["unit"]] = record
            progress.advance(f"unit {record['unit']} {record['status']}")
        progress.close()
        timings["units (search + cube)"] = time.perf_counter() - t0
        unit_results = {tid: [finished[u.key] for u in us] for tid, us in by_tile.items()}
        ok_tiles = [
            tid
            for tid, rs in unit_results.items()
            if all(r["status"] in ("done", "skipped") for r in rs)
            and storage.exists(cube_location(request.out.url, tid))
        ]
        products: dict[str, dict] = {}
        if run_products:
            t0 = time.perf_counter()
            product_futures = {
                client.submit(
                    pipeline.dispatch_run_product, request, p, tid,
                    key=task_key("geoproc-run-product", p, tid), pure=False,
                ): f"{p}/{tid}"
                for p in request.products
                for tid in ok_tiles
            }  # fmt: skip
            progress.stage("products (product x tile)", len(product_futures))
            for fut in as_completed(list(product_futures), loop=client.loop):
                key = product_futures[fut]
                try:
                    products[key] = fut.result()
                except Exception as exc:  # noqa: BLE001 - reported per product and tile
                    products[key] = {"status": "failed", "reason": f"{type(exc).__name__}: {exc}"}
                progress.advance(f"{key} {products[key]['status']}")
            progress.close()
            products = dict(sorted(products.items()))
            timings["products"] = time.perf_counter() - t0
            for p in request.products:
                timings[f"product:{p} (task time)"] = sum(
                    float(v.get("seconds", 0)) for k, v in products.items() if k.startswith(f"{p}/")
                )
        links = {**(links or {}), **perf.finish(client)}
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    flat = [r for rs in unit_results.values() for r in rs]
    failed = [r for r in flat if r["status"] in ("failed", "blocked")]
    failed += [{"unit": k, **v} for k, v in products.items() if v.get("status") == "failed"]
    report = {
        "run_id": run_id,
        "kind": "backfill",
        "status": "partial" if failed else "complete",
        "software_version": __version__,
        "request": {**pipeline.request_record(request), "period_months": period_months},
        "units": {
            "total": len(flat),
            **{
                s: sum(r["status"] == s for r in flat)
                for s in ("done", "skipped", "failed", "blocked")
            },
        },
        "inputs": run_report.merge_inputs([r["inputs"] for r in flat if "inputs" in r]),
        "unit_results": unit_results,
        "products": products,
        "failed": failed,
        "masked_fraction": {
            tid: run_report.masked_fractions(request.out.url, tid, steps=written)
            for tid, rs in unit_results.items()
            if (written := [s for r in rs for s in r.get("steps_written_labels", [])])
        },
        "tiles": run_report.tile_outlines(tiles),
        "links": run_report.links(published=False, extra=links),
    }
    if publish_outputs and products:
        t0 = time.perf_counter()
        report["publish"] = pipeline.publish(request, report["run_id"])
        timings["publish"] = time.perf_counter() - t0
        report["links"] = run_report.links(published=True, extra=links)
    timings["search (task time)"] = sum(float(r.get("search_s", 0)) for r in flat)
    timings["cube (task time)"] = sum(float(r.get("cube_s", 0)) for r in flat)
    report["timings_s"] = {k: round(v, 2) for k, v in timings.items()}
    report["report_url"] = pipeline.write_report(request, f"backfill-{report['run_id']}", report)
    return report


def summary(report: dict) -> str:
    """One line for the terminal and the flow state: counts, failed units, report URL."""
    u = report["units"]
    failed = [f["unit"] for f in report["failed"] if f.get("status") == "failed"]
    text = (
        f"backfill {report['status']}: {u['total']} units, {u['done']} done, {u['skipped']} skipped, "
        f"{u['failed']} failed, {u['blocked']} blocked"
    )
    if failed:
        text += f"; failed: {', '.join(failed)}"
    return f"{text}; report {report['report_url']}"


__all__ = [
    "WorkUnit",
    "periods",
    "plan_units",
    "run_backfill",
    "run_tile_units",
    "run_unit_after",
    "summary",
]
