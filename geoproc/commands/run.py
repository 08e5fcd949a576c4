"""`geoproc run PRODUCTS --catalog URL --aoi ... --start ... --end ... --out URL`: one whole run."""

from __future__ import annotations

import argparse
import json
import sys

from geoproc.request import DEFAULT_COLLECTIONS, PRODUCTS


def add_request_arguments(
    parser: argparse.ArgumentParser, *, catalog_required: bool = True
) -> None:
    """The arguments of a run request, shared by `run` and `demo`-like commands."""
    parser.add_argument("--catalog", required=catalog_required, help="STAC API root URL")
    parser.add_argument(
        "--aoi", required=True, help="WEST,SOUTH,EAST,NORTH | GeoJSON file | tile ids"
    )
    parser.add_argument("--start", required=True, help="first date, YYYY-MM-DD")
    parser.add_argument("--end", required=True, help="last date (inclusive), YYYY-MM-DD")
    parser.add_argument(
        "--out", required=True, help="output root: path, file:// or s3://bucket/prefix"
    )
    parser.add_argument(
        "--collections",
        default=",".join(DEFAULT_COLLECTIONS),
        help="comma-separated collection ids",
    )
    parser.add_argument(
        "--tile-size", type=int, default=1024, help="processing tile side in pixels (default 1024)"
    )
    parser.add_argument(
        "--max-cloud-cover",
        type=float,
        default=80.0,
        help="drop optical scenes above this cloud cover (%%)",
    )
    parser.add_argument(
        "--no-publish",
        action="store_true",
        help="stop after the product stores (no COG/STAC/tiles)",
    )
    parser.add_argument(
        "--flow",
        action="store_true",
        help="run as a Prefect flow (the regional flow) instead of in-process",
    )


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("run", help="cube + products + publish for an AOI and date range")
    parser.add_argument("products", help=f"comma-separated: {', '.join(PRODUCTS)}")
    add_request_arguments(parser)
    parser.set_defaults(func=_run)


def request_from_args(args: argparse.Namespace, products: str):
    from geoproc.errors import UsageError
    from geoproc.request import RunRequest

    if args.tile_size < 16:
        raise UsageError(
            f"--tile-size {args.tile_size} is too small: pass 16 pixels or more (default 1024)."
        )
    if not 0 <= args.max_cloud_cover <= 100:
        raise UsageError(
            f"--max-cloud-cover {args.max_cloud_cover} is not a percentage: pass 0 to 100."
        )
    return RunRequest.create(
        products=products,
        aoi=args.aoi,
        start=args.start,
        end=args.end,
        catalog=args.catalog,
        out=args.out,
        collections=args.collections,
        options={"tile_size_px": args.tile_size, "max_cloud_cover": args.max_cloud_cover},
    )


def execute(request, *, use_flow: bool, publish: bool) -> dict:
    """Run in-process, or through the Prefect regional flow (same stages)."""
    from geoproc.grid import parse_aoi

    parse_aoi(request.aoi)  # a bad AOI fails before any server or store is touched
    if use_flow:
        from flows.regional import regional_mapping

        return regional_mapping(request=request, publish_outputs=publish)
    from geoproc.pipeline import run_pipeline

    return run_pipeline(
        request, publish_outputs=publish, progress=lambda m: print(m, file=sys.stderr, flush=True)
    )


def _run(args: argparse.Namespace) -> int:
    request = request_from_args(args, args.products)
    report = execute(request, use_flow=args.flow, publish=not args.no_publish)
    print(
        json.dumps(
            {k: report[k] for k in ("run_id", "report_url", "timings_s") if k in report}, indent=2
        )
    )
    return 0
