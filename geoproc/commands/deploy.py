"""`geoproc deploy regional --cron "..." ...`: a scheduled Prefect deployment of the regional flow."""

from __future__ import annotations

import argparse

from geoproc.commands.run import CATALOG_HELP, END_HELP, START_HELP
from geoproc.request import DEFAULT_COLLECTIONS, PRODUCTS


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("deploy", help="create a scheduled Prefect deployment")
    which = parser.add_subparsers(dest="deploy_flow", metavar="FLOW", required=True)
    regional = which.add_parser("regional", help="the regional mapping flow on a cron schedule")
    regional.add_argument("--cron", required=True, help='cron expression, e.g. "0 6 * * *"')
    regional.add_argument(
        "--name", default="scheduled", help="deployment name (default: scheduled)"
    )
    regional.add_argument("--work-pool", default=None, help="Prefect work pool for the runs")
    regional.add_argument("--products", default=",".join(PRODUCTS), help="comma-separated products")
    regional.add_argument("--catalog", required=True, help=CATALOG_HELP)
    regional.add_argument(
        "--aoi", required=True, help="WEST,SOUTH,EAST,NORTH | GeoJSON file | tile ids"
    )
    regional.add_argument(
        "--start",
        required=True,
        help=START_HELP + "; the deployment stores the window, each run resolves it on its day",
    )
    regional.add_argument("--end", default="now", help=END_HELP)
    regional.add_argument("--out", required=True, help="output root")
    regional.add_argument("--collections", default=",".join(DEFAULT_COLLECTIONS))
    regional.add_argument("--tile-size", type=int, default=1024)
    regional.add_argument(
        "--dask-address",
        default=None,
        help="tcp://host:port of a Dask scheduler the scheduled runs execute their stages on",
    )
    regional.set_defaults(func=_regional)


def _regional(args: argparse.Namespace) -> int:
    from geoproc.errors import UsageError
    from geoproc.grid import parse_aoi
    from geoproc.request import RunRequest, window_parameters

    fields = args.cron.split()
    if len(fields) not in (5, 6):
        raise UsageError(
            f'--cron {args.cron!r} is not a cron expression: use five fields, e.g. "0 6 * * *".'
        )
    request = RunRequest.create(
        products=args.products, aoi=args.aoi, start=args.start, end=args.end,
        catalog=args.catalog, out=args.out, collections=args.collections,
    )  # fmt: skip
    parse_aoi(request.aoi)
    start, end = window_parameters(args.start, args.end)  # a rolling window stays relative
    from flows.deployments import deploy_regional

    deployment_id = deploy_regional(
        name=args.name,
        cron=args.cron,
        work_pool=args.work_pool,
        parameters={
            "products": ",".join(request.products), "aoi": str(request.aoi), "catalog": request.catalog,
            "out": request.out.url, "start": start, "end": end,
            "collections": ",".join(request.collections), "tile_size_px": args.tile_size,
            **({"dask_address": args.dask_address} if args.dask_address else {}),
        },
    )  # fmt: skip
    print(
        f"deployment regional-mapping/{args.name} ({deployment_id}) scheduled with cron {args.cron!r}"
    )
    return 0
