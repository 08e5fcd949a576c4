"""The `geoproc` command: parses arguments, calls the library, maps errors to exit codes.

Each command group lives in `geoproc/commands/<group>.py` and exposes
``register(subparsers)``; this file only collects them, so adding a command never
touches another command's file.

Exit codes: 0 success, 1 runtime failure (`GeoprocError`, or storage that failed for
good after its retries), 2 usage error (`UsageError` or an argparse error), 130
interrupted. A user mistake never prints a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

from geoproc import __version__
from geoproc.errors import GeoprocError


def _command_modules() -> list:
    import geoproc.commands as pkg

    return [
        importlib.import_module(f"geoproc.commands.{m.name}")
        for m in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name)
        if not m.name.startswith("_")
    ]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="geoproc",
        description="Satellite archives to flood, land surface temperature and tree canopy maps.",
    )
    parser.add_argument("--version", action="version", version=f"geoproc {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress at INFO level")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in _command_modules():
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        result = args.func(args)
    except GeoprocError as exc:
        print(f"geoproc: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except _storage_errors() as exc:
        print(f"geoproc: error: {_storage_message(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("geoproc: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


def _storage_errors() -> tuple[type[BaseException], ...]:
    """I/O failures that outlived the storage clients' own retries (disk, S3, network)."""
    from botocore.exceptions import BotoCoreError, ClientError

    return (OSError, BotoCoreError, ClientError)


def _storage_message(exc: BaseException) -> str:
    """Name the endpoint that failed; never echo a credential."""
    from geoproc.redact import scrub
    from geoproc.settings import get_settings

    endpoint = get_settings().resolved_s3_endpoint() or "S3 or local disk"
    return (
        f"storage at {endpoint} failed: {scrub(str(exc))}. Check that the endpoint is "
        "reachable and the credentials allowed, then run the same command again (it resumes)."
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
