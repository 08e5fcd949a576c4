"""`geoproc run PRODUCTS --catalog URL --aoi ... --start ... --end ... --out URL`: one whole run."""

from __future__ import annotations

import argparse
import json

from geoproc.request import DEFAULT_COLLECTIONS, PRODUCTS

CATALOG_HELP = (
    "STAC API root URL, static catalog.json (path, s3:// or http(s)) or folder of item files"
)
START_HELP = (
    "first date, YYYY-MM-DD, or a rolling window before --end as an ISO-8601 duration: "
    "--start=-P30D (30 days), -P2W, -P1M (write it with '=' so it is not read as an option)"
)
END_HELP = "last date (inclusive), YYYY-MM-DD, or 'now' (the default): today, UTC, at run time"


def add_request_arguments(
    parser: argparse.ArgumentParser, *, catalog_required: bool = True
) -> None:
    """The arguments of a run request, shared by `run` and `demo`-like commands."""
    parser.add_argument("--catalog", required=catalog_required, help=CATALOG_HELP)
    parser.add_argument(
        "--aoi", required=True, help="WEST,SOUTH,EAST,NORTH | GeoJSON file | tile ids"
    )
    parser.add_argument("--start", required=True, help=START_HELP)
    parser.add_argument("--end", default="now", help=END_HELP)
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
    for tag, default in (("catalog", 4), ("object-store", 16)):
        parser.add_argument(
            f"--{tag}-concurrency",
            type=int,
            default=None,
            help=f"with --flow: at most N tasks tagged {tag!r} at once (Prefect limit; default "
            f"{default} when the server has none, env GEOPROC_{tag.upper().replace('-', '_')}_CONCURRENCY)",
        )
    parser.add_argument(
        "--verify",
        choices=("quick", "full"),
        default="quick",
        help="check the cube steps a rerun would skip: quick (every chunk present and non-empty, "
        "one listing) or full (decode every chunk through its checksum); damaged steps are rebuilt",
    )
    parser.add_argument(
        "--timeseries-copy",
        metavar="N|all",
        default=None,
        help="also keep a time-chunked copy (N dates per chunk) of every cube and product store "
        "under OUT/timeseries/, extended with each run's new dates (see `geoproc rechunk`)",
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bar or progress lines on stderr"
    )


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("run", help="cube + products + publish for an AOI and date range")
    parser.add_argument("products", help=f"comma-separated: {', '.join(PRODUCTS)}")
    add_request_arguments(parser)
    parser.add_argument(
        "--dask-address",
        default=None,
        help="tcp://host:port of a Dask scheduler: cube builds and product runs execute there",
    )
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
        options={
            "tile_size_px": args.tile_size,
            "max_cloud_cover": args.max_cloud_cover,
            # only a non-default check enters the request (and so its run id)
            **({"verify": args.verify} if getattr(args, "verify", "quick") != "quick" else {}),
            **_timeseries_option(getattr(args, "timeseries_copy", None)),
        },
    )


def _timeseries_option(text: str | None) -> dict:
    """``--timeseries-copy N|all`` as a request option (absent: no option, same run id)."""
    from geoproc.errors import UsageError

    if text is None:
        return {}
    if text == "all":
        return {"timeseries_time_chunk": "all"}
    try:
        return {"timeseries_time_chunk": int(text)}
    except ValueError:
        raise UsageError(
            f"--timeseries-copy {text!r}: pass a whole number of dates per chunk or `all`."
        ) from None


def execute(
    request,
    *,
    use_flow: bool,
    publish: bool,
    dask_address: str | None = None,
    quiet: bool = False,
    concurrency: dict[str, int | None] | None = None,
) -> dict:
    """Run in-process, or through the Prefect regional flow (same stages)."""
    from geoproc.grid import parse_aoi

    parse_aoi(request.aoi)  # a bad AOI fails before any server or store is touched
    concurrency = concurrency or {}
    if use_flow:
        from flows.regional import regional_mapping

        return regional_mapping(
            request=request,
            publish_outputs=publish,
            dask_address=dask_address,
            catalog_concurrency=concurrency.get("catalog"),
            object_store_concurrency=concurrency.get("object-store"),
        )
    from geoproc.pipeline import run_pipeline
    from geoproc.progress import Progress

    progress = Progress(quiet=quiet)
    try:
        return run_pipeline(
            request, publish_outputs=publish, dask_address=dask_address, progress=progress
        )
    finally:
        progress.close()


def _run(args: argparse.Namespace) -> int:
    request = request_from_args(args, args.products)
    report = execute(
        request,
        use_flow=args.flow,
        publish=not args.no_publish,
        dask_address=args.dask_address,
        quiet=args.quiet,
        concurrency={
            "catalog": args.catalog_concurrency,
            "object-store": args.object_store_concurrency,
        },
    )
    print(
        json.dumps(
            {k: report[k] for k in ("run_id", "status", "report_url", "timings_s") if k in report},
            indent=2,
        )
    )
    return 0
