"""`geoproc stac serve DIR`: a real STAC API over a local archive, until interrupted."""

from __future__ import annotations

import argparse
import signal
import time
from pathlib import Path

from geoproc.errors import UsageError


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("stac", help="STAC utilities (serve a local archive)")
    stac_sub = parser.add_subparsers(dest="stac_command", metavar="ACTION", required=True)
    serve = stac_sub.add_parser("serve", help="serve an archive with a STAC API on loopback")
    serve.add_argument("archive", type=Path, help="folder made by `geoproc sample create`")
    serve.add_argument("--port", type=int, default=None, help="port (default: a free one)")
    serve.add_argument(
        "--duration",
        type=float,
        default=None,
        help="stop after this many seconds (default: run until Ctrl-C)",
    )
    serve.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    from geoproc.dev.stac_server import serve_archive

    if not args.archive.is_dir():
        raise UsageError(
            f"Archive folder {args.archive} does not exist: pass the --out folder of `geoproc sample create`."
        )
    if args.port is not None and not (1 <= args.port <= 65535):
        raise UsageError(f"--port {args.port} is out of range: pass a port between 1 and 65535.")
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        # A shell that starts a job with `&` hands it SIGINT ignored, and Python then never
        # raises KeyboardInterrupt: a server whose way to stop is SIGINT would sleep forever
        # and leave its rustac child and temp folder behind. Only this server re-arms it.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    with serve_archive(args.archive, port=args.port) as url:
        print(f"STAC API serving {args.archive} at {url} (Ctrl-C to stop)", flush=True)
        deadline = None if args.duration is None else time.monotonic() + args.duration
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.2)
    return 0
