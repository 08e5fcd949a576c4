"""`geoproc plan PRODUCTS --aoi ... --start ... --end ...`: what a run would cost, before it runs.

Takes the same arguments as `run` and `backfill` and prints, without searching a catalog
or reading a pixel: tiles, expected acquisitions per collection (from revisit cycles),
input bytes, output bytes per store kind, CPU-hours and peak memory per worker (from the
README benchmark figures; assumptions in `geoproc.plan`).
"""

from __future__ import annotations

import argparse
import json

from geoproc.commands.run import add_request_arguments
from geoproc.request import PRODUCTS


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "plan", help="estimate tiles, acquisitions, bytes and CPU-hours of a run (reads nothing)"
    )
    parser.add_argument("products", help=f"comma-separated: {', '.join(PRODUCTS)}")
    add_request_arguments(parser, catalog_required=False)
    parser.add_argument("--period-months", type=int, default=3, help="accepted as for backfill")
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    parser.set_defaults(func=_plan)


def _plan(args: argparse.Namespace) -> int:
    from geoproc.errors import UsageError
    from geoproc.grid import parse_aoi
    from geoproc.plan import plan_request
    from geoproc.request import parse_collections, parse_date_range, parse_products

    if args.tile_size < 16:
        raise UsageError(f"--tile-size {args.tile_size} is too small: pass 16 pixels or more.")
    if not args.aoi or not str(args.aoi).strip():
        raise UsageError("--aoi is empty: pass WEST,SOUTH,EAST,NORTH, a GeoJSON file or tile ids.")
    if args.catalog is not None:
        # Not searched (a plan reads nothing), but a value no run accepts is refused here too.
        from geoproc.catalog.source import classify_catalog

        classify_catalog(args.catalog)
    start, end = parse_date_range(args.start, args.end)
    parse_aoi(args.aoi)
    plan = plan_request(
        products=parse_products(args.products),
        aoi=args.aoi,
        start=start,
        end=end,
        collections=parse_collections(args.collections),
        tile_size_px=args.tile_size,
        resolution=30.0,
    )
    print(json.dumps(plan, indent=2) if args.json else render(plan))
    return 0


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{n:,.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000
    return str(n)


def render(plan: dict) -> str:
    """The plan as a short report an operator can read."""
    approx = "" if plan["tiles_exact"] else "about "
    lines = [
        f"tiles            {approx}{plan['tiles']:,} ({plan['tile_size_px']} px at "
        f"{plan['resolution_m']:g} m), {plan['days']:,} days",
        f"time steps       {plan['time_steps_per_tile']:,} per tile, "
        f"{plan['tile_steps']:,} tile-steps",
        "acquisitions per tile (revisit cycle; no search made):",
    ]
    for name, c in plan["collections"].items():
        lines.append(
            f"  {name:<16} {c['acquisitions_per_tile']:>6,}  every {c['revisit_days']:g} d: "
            f"{c['assumption']}"
        )
    lines.append("output steps per tile:")
    for name, p in plan["products"].items():
        lines.append(f"  {name:<16} {p['output_steps_per_tile']:>6,}")
    out = plan["output_bytes"]
    cpu = plan["cpu_hours"]
    mem = plan["peak_memory_mib_per_worker"]
    lines += [
        f"input bytes      {_size(plan['input_bytes'])} (uncompressed windows; reads are smaller)",
        f"output bytes     cube Zarr {_size(out['cube_zarr'])}, product Zarr "
        f"{_size(out['product_zarr'])}, COG {_size(out['cog'])} (uncompressed upper bounds)",
        f"CPU-hours        {cpu['total']:,.1f} (cube {cpu['cube']:,.1f}, products "
        f"{cpu['products']:,.1f}); GPU-hours: not estimated (no GPU benchmark)",
        f"peak memory      {mem['cube']:.0f} MiB per cube worker, {mem['products']:.0f} MiB per "
        "product worker",
    ]
    limits = plan["limits"]
    if not limits["within"]:
        lines.append(
            f"over the limits  GEOPROC_MAX_PLAN_TILES={limits['max_plan_tiles']:,}, "
            f"GEOPROC_MAX_PLAN_TILE_STEPS={limits['max_plan_tile_steps']:,}: `geoproc run` "
            "refuses this request; split it or raise the limits"
        )
    lines.append("assumptions: geoproc/plan.py (figures from the README benchmark tables)")
    return "\n".join(lines)
