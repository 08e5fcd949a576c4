"""`geoproc backfill PRODUCTS ...`: a long date range as tile x period units on Dask, resumable."""

from __future__ import annotations

import argparse
import json
import logging

from geoproc.commands.run import add_request_arguments, request_from_args
from geoproc.request import PRODUCTS


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "backfill", help="resumable backfill over a long date range on a Dask cluster"
    )
    parser.add_argument("products", help=f"comma-separated: {', '.join(PRODUCTS)}")
    add_request_arguments(parser)
    parser.add_argument(
        "--period-months", type=int, default=3, help="months per work unit (default 3)"
    )
    parser.add_argument("--workers", type=int, default=2, help="LocalCluster workers (default 2)")
    parser.add_argument(
        "--dask-address", default=None, help="tcp://host:port of an existing Dask scheduler"
    )
    parser.set_defaults(func=_backfill)


def _backfill(args: argparse.Namespace) -> int:
    from geoproc.backfill import run_backfill, summary
    from geoproc.grid import parse_aoi

    request = request_from_args(args, args.products)
    parse_aoi(request.aoi)
    if not getattr(args, "verbose", False):  # the cluster's own INFO lines drown the progress
        import distributed  # noqa: F401 - importing it sets its loggers' levels: override after

        logging.getLogger("distributed").setLevel(logging.WARNING)
    if args.flow:
        from flows.backfill import backfill

        state = backfill(
            request=request, period_months=args.period_months, workers=args.workers,
            dask_address=args.dask_address, publish_outputs=not args.no_publish,
            catalog_concurrency=args.catalog_concurrency,
            object_store_concurrency=args.object_store_concurrency, return_state=True,
        )  # fmt: skip
        report = state.result()
    else:
        from geoproc.progress import Progress

        progress = Progress(quiet=args.quiet)
        try:
            report = run_backfill(
                request, period_months=args.period_months, workers=args.workers,
                dask_address=args.dask_address, publish_outputs=not args.no_publish,
                progress=progress,
            )  # fmt: skip
        finally:
            progress.close()
    print(summary(report))
    if report["failed"]:
        print(json.dumps(report["failed"], indent=2))
        return 1
    return 0
