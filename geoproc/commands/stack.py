"""`geoproc stack up|down|status`: the local stack (Prefect, Dask, S3, STAC API) on loopback.

Configuration only through `GEOPROC_STACK_*` variables (see `geoproc.dev.local_stack.StackSettings`),
so the same settings drive `infra/local/up.sh`, CI and a developer's shell.
"""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "stack",
        help="local stack: Prefect server + worker, Dask scheduler + workers, S3, STAC API",
        description="Configured by GEOPROC_STACK_* environment variables (DIR, *_PORT, "
        "DASK_WORKERS, BUCKET, WORK_POOL, ARCHIVE, ...); a port of 0 picks a free one.",
    )
    action = parser.add_subparsers(dest="stack_action", metavar="ACTION", required=True)
    action.add_parser("up", help="start every service and wait until each is healthy").set_defaults(
        func=_up
    )
    action.add_parser("down", help="stop every service; fails if a process is left").set_defaults(
        func=_down
    )
    action.add_parser("status", help="services and URLs of the running stack").set_defaults(
        func=_status
    )


def _up(args: argparse.Namespace) -> int:
    from geoproc.dev.local_stack import stack_up

    state = stack_up()
    width = max(map(len, state.urls))
    print("local stack is up:")
    for name, url in state.urls.items():
        print(f"  {name:<{width}}  {url}")
    print(f"use it from a shell:  source {state.dir / 'stack.env'}")
    print("stop it:              geoproc stack down")
    return 0


def _down(args: argparse.Namespace) -> int:
    from geoproc.dev.local_stack import StackSettings, stack_down

    state_dir = StackSettings.from_environment().dir
    stopped = stack_down(state_dir)
    if not stopped:
        print(f"no stack state in {state_dir.resolve()}: nothing to stop")
    else:
        print(f"stopped {', '.join(stopped)}; no process of the stack is left")
    return 0


def _status(args: argparse.Namespace) -> int:
    from geoproc.dev.local_stack import stack_status

    status = stack_status()
    if not status:
        print("no stack is running (set GEOPROC_STACK_DIR to the folder used by `up`)")
        return 1
    print(json.dumps(status, indent=2))
    return 0
