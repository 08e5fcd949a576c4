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
import traceback
from dataclasses import dataclass, replace
from datetime import date, timedelta

import numpy as np
import xarray as xr

from geoproc import pipeline, storage
from geoproc.errors import GeoprocError, UsageError
from geoproc.grid import Tile
from geoproc.request import RunRequest
from geoproc.store import cube_location

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
    if not storage.exists(location.join("zarr.json")):
        return set()
    ds = xr.open_zarr(storage.zarr_store(location, read_only=True), consolidated=True)
    complete = ds["time_complete"].values.astype(bool)
    seconds = ds["time"].values.astype("datetime64[s]").astype(np.int64)
    platforms = ds["platform"].values.astype(str)
    return {(int(s), p) for s, p, c in zip(seconds, platforms, complete, strict=True) if c}


def run_unit(request: RunRequest, tile: Tile, unit: WorkUnit) -> dict:
    """Search the unit's period for its tile and append what the cube lacks."""
    window = replace(request, start=unit.start, end=unit.end)
    steps = pipeline.search(window, [tile]).tiles[tile.id].steps
    done = _completed_keys(request, tile.id)
    if all(s.key in done for s in steps):
        return {"unit": unit.key, "status": "skipped", "steps": len(steps)}
    record = pipeline.build_cube(request, tile, steps)
    failed_assets = record.get("asset_errors", [])
    return {
        "unit": unit.key,
        "status": "done",
        "steps": len(steps),
        "steps_written": len(record["steps_written"]),
        "asset_errors": failed_assets,
    }


def run_tile_units(request: RunRequest, tile: Tile, units: list[WorkUnit]) -> list[dict]:
    """A tile's units in date order; the first failure blocks the later ones."""
    results: list[dict] = []
    failed: str | None = None
    for unit in sorted(units, key=lambda u: u.start):
        if failed:
            results.append(
                {"unit": unit.key, "status": "blocked", "reason": f"after failed unit {failed}"}
            )
            continue
        try:
            results.append(run_unit(request, tile, unit))
        except GeoprocError as exc:
            failed = unit.key
            results.append({"unit": unit.key, "status": "failed", "reason": str(exc)})
        except Exception as exc:  # noqa: BLE001 - a unit's crash is reported, not fatal to the run
            failed = unit.key
            log.error("unit %s failed:\n%s", unit.key, traceback.format_exc())
            results.append(
                {"unit": unit.key, "status": "failed", "reason": f"{type(exc).__name__}: {exc}"}
            )
    return results


def _client(dask_address: str | None, workers: int):
    from distributed import Client, LocalCluster

    if dask_address:
        return Client(dask_address), None
    cluster = LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
    )
    return Client(cluster), cluster


def run_backfill(
    request: RunRequest,
    *,
    period_months: int = 3,
    workers: int = 2,
    dask_address: str | None = None,
    publish_outputs: bool = False,
) -> dict:
    """Every unit of the request on Dask; products for tiles whose units all succeeded."""
    if workers < 1:
        raise UsageError(f"--workers {workers} must be 1 or more.")
    from geoproc.request import check_catalog

    check_catalog(request.catalog)
    tiles, units = plan_units(request, period_months=period_months)
    client, cluster = _client(dask_address, workers)
    try:
        log.info("Dask dashboard: %s", client.dashboard_link)
        futures = {
            t.id: client.submit(
                run_tile_units, request, t, [u for u in units if u.tile == t.id], pure=False
            )
            for t in tiles
        }
        unit_results = {tid: f.result() for tid, f in futures.items()}
        ok_tiles = [
            tid
            for tid, rs in unit_results.items()
            if all(r["status"] in ("done", "skipped") for r in rs)
            and storage.exists(cube_location(request.out.url, tid))
        ]
        product_futures = {
            f"{p}/{tid}": client.submit(pipeline.run_product, request, p, tid, pure=False)
            for p in request.products
            for tid in ok_tiles
        }
        products = {}
        for key, fut in product_futures.items():
            try:
                products[key] = fut.result()
            except Exception as exc:  # noqa: BLE001 - reported per product and tile
                products[key] = {"status": "failed", "reason": f"{type(exc).__name__}: {exc}"}
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    flat = [r for rs in unit_results.values() for r in rs]
    failed = [r for r in flat if r["status"] in ("failed", "blocked")]
    failed += [{"unit": k, **v} for k, v in products.items() if v.get("status") == "failed"]
    report = {
        "run_id": pipeline.run_id_for(request),
        "status": "partial" if failed else "complete",
        "units": {
            "total": len(flat),
            **{
                s: sum(r["status"] == s for r in flat)
                for s in ("done", "skipped", "failed", "blocked")
            },
        },
        "unit_results": unit_results,
        "products": products,
        "failed": failed,
    }
    if publish_outputs and products:
        report["publish"] = pipeline.publish(request, report["run_id"])
    report["report_url"] = pipeline.write_report(request, f"backfill-{report['run_id']}", report)
    return report


def summary(report: dict) -> str:
    """One line for the terminal and the flow state: counts, failed units, report URL."""
    u = report["units"]
    failed = [f["unit"] for f in report["failed"] if f.get("status") == "failed" or "reason" in f]
    text = (
        f"backfill {report['status']}: {u['total']} units, {u['done']} done, {u['skipped']} skipped, "
        f"{u['failed']} failed, {u['blocked']} blocked"
    )
    if failed:
        text += f"; failed: {', '.join(failed)}"
    return f"{text}; report {report['report_url']}"


__all__ = ["WorkUnit", "periods", "plan_units", "run_backfill", "run_tile_units", "summary"]
