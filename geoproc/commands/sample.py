"""`geoproc sample create|info`: make the synthetic demo/test archive, or summarise one."""

from __future__ import annotations

import argparse
import json
import time


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("sample", help="create or inspect the synthetic sample archive")
    sample_sub = parser.add_subparsers(dest="sample_command", metavar="ACTION", required=True)

    create = sample_sub.add_parser(
        "create", help="generate the archive (STAC items, COGs, ground truth)"
    )
    create.add_argument(
        "--out", required=True, metavar="DIR", help="folder to write (created if missing)"
    )
    create.add_argument(
        "--seed", type=int, default=0, help="random seed; same seed -> same bytes (default 0)"
    )
    create.add_argument(
        "--size",
        choices=("small", "medium"),
        default="small",
        help="small: test bed (<1 min); medium: demo and benchmarks",
    )
    create.add_argument(
        "--workers", type=int, default=None, help="processes to use (default: up to 2)"
    )
    create.set_defaults(func=_create)

    info = sample_sub.add_parser("info", help="items per collection and date range of an archive")
    info.add_argument(
        "archive", metavar="DIR", help="archive folder made by `geoproc sample create`"
    )
    info.add_argument("--json", action="store_true", help="print JSON instead of a table")
    info.set_defaults(func=_info)


def _create(args: argparse.Namespace) -> int:
    from geoproc.dev.sample import create_archive
    from geoproc.dev.sample.info import archive_info, format_info
    from geoproc.errors import UsageError

    if args.workers is not None and args.workers < 1:
        raise UsageError(
            f"--workers {args.workers} is not a process count: pass --workers 1 or more."
        )
    started = time.perf_counter()
    out = create_archive(args.out, seed=args.seed, size=args.size, workers=args.workers)
    print(format_info(archive_info(out)))
    print(f"ready in {time.perf_counter() - started:.1f} s: {out}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from geoproc.dev.sample.info import archive_info, format_info

    info = archive_info(args.archive)
    print(json.dumps(info, indent=2) if args.json else format_info(info))
    return 0
