"""The `geoproc` command: parses arguments, calls the library, maps errors to exit codes.

Each command group lives in `geoproc/commands/<group>.py` and exposes
``register(subparsers)``; this file only collects them, so adding a command never
touches another command's file. Command modules import their heavy libraries (torch,
prefect, dask, rio-tiler) inside the functions that run, and when the command word is
known only that command's module is imported, so `geoproc <command> --help` starts fast.

Exit codes (the classes and their table live in `geoproc.errors`): 0 success, 1 runtime
failure, 2 usage error, 3 missing local file, 4 schema problem, 5 storage failure (local
disk: path named; S3: endpoint named), 6 network failure, 70 internal error (a bug; the
traceback is saved to a file), 130 interrupted (Ctrl-C), 143 terminated (SIGTERM); both
unwind, so servers geoproc started are stopped and their temporary files removed. A user
mistake never prints a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import importlib
import logging
import pkgutil
import signal
import sys
import threading

from geoproc import __version__
from geoproc.errors import (
    GeoprocError,
    InternalError,
    MissingFileError,
    NetworkError,
    StorageFailure,
    UsageError,
)


def _command_names() -> list[str]:
    """Command groups by module name, found without importing them."""
    import geoproc.commands as pkg

    return sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_"))


def _command_word(argv: list[str] | None) -> str | None:
    """The first positional token (the command), if any; options before it are top-level."""
    for token in argv or ():
        if token == "--":
            return None
        if not token.startswith("-"):
            return token
    return None


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser for `argv`: only the named command's module when argv names a known one."""
    parser = argparse.ArgumentParser(
        prog="geoproc",
        description="Satellite archives to flood, land surface temperature and tree canopy maps.",
    )
    parser.add_argument("--version", action="version", version=f"geoproc {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress at INFO level")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    names = _command_names()
    word = _command_word(argv)
    for name in [word] if word in names else names:
        module = importlib.import_module(f"geoproc.commands.{name}")
        # the command list needs a name and a help line; a module whose full parser is
        # costly to build (bench imports every benchmark) offers a summary for it
        summary = getattr(module, "register_summary", None)
        (module.register if name == word or summary is None else summary)(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        with _terminate_as_interrupt():
            result = args.func(args)
    except Terminated:
        print(
            "geoproc: terminated (SIGTERM); servers stopped, temporary files removed",
            file=sys.stderr,
        )
        return 143
    except KeyboardInterrupt:
        print("geoproc: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # every failure becomes one message and one exit code
        error = classify_error(exc, out=getattr(args, "out", None))
        print(f"geoproc: error: {error}", file=sys.stderr)
        return error.exit_code
    return int(result or 0)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so every `with`/`finally` runs (servers, temp folders)."""


@contextlib.contextmanager
def _terminate_as_interrupt():
    """While a command runs, SIGTERM unwinds the stack like SIGINT instead of killing at once.

    Why: Python's default SIGTERM ends the process without running `finally` blocks, so a
    `geoproc stac serve` stopped by a supervisor left its rustac child (in its own session)
    running and its temp folder behind. Only the main thread can own signal handlers; the
    previous handler is restored afterwards (tests call `main` in-process).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _raise(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def classify_error(exc: BaseException, *, out: str | None = None) -> GeoprocError:
    """The geoproc error that says what happened; `out` is the run's --out (local or s3)."""
    if isinstance(exc, GeoprocError):
        return exc
    pydantic = sys.modules.get("pydantic")  # settings are read with pydantic-settings
    if pydantic is not None and isinstance(exc, pydantic.ValidationError):
        fields = ", ".join(
            f"GEOPROC_{'_'.join(map(str, e['loc'])).upper()} ({e['msg']})" for e in exc.errors()
        )
        return UsageError(f"invalid environment setting: {fields}; fix or unset it.")
    out_is_s3 = str(out or "").lower().startswith("s3://")
    if _is_s3_client_error(exc):
        return StorageFailure(_s3_message(_scrub_safely(str(exc))))
    if isinstance(exc, OSError):
        path = exc.filename if isinstance(exc.filename, str) else None
        # s3fs names objects "bucket/key": only such a name is the output store's, any
        # other path (absolute or relative) is a local file.
        in_out_bucket = out_is_s3 and _in_bucket(path or str(exc), str(out))
        local = path is not None and not in_out_bucket
        if isinstance(exc, FileNotFoundError) and not in_out_bucket:
            what = f"{path} does not exist" if path else _scrub_safely(str(exc)).rstrip(".")
            return MissingFileError(
                f"{what}: check the path (or the file geoproc was told to read), "
                "then run the same command again."
            )
        if _is_network_error(exc):
            if out_is_s3:
                return StorageFailure(_s3_message(_scrub_safely(str(exc))))
            return NetworkError(
                f"a network connection failed: {_scrub_safely(str(exc))}. Check the network and the "
                "server named in the command (--catalog), then run the same command again."
            )
        if out_is_s3 and not local:
            return StorageFailure(_s3_message(_scrub_safely(str(exc))))
        where = path or (str(out) if out else "the local disk")
        hint = (
            "free space on that disk"
            if exc.errno in (errno.ENOSPC, errno.EDQUOT)
            else "that the path exists, is writable and has free space"
        )
        return StorageFailure(
            f"local disk at {where} failed: {_scrub_safely(exc.strerror or str(exc))}. Check {hint}, "
            "then run the same command again (it resumes)."
        )
    return _internal_error(exc)


def _in_bucket(name: str, out: str) -> bool:
    """Whether an s3fs object name ("bucket/key") lies in the bucket of an s3:// `out`."""
    bucket = out[len("s3://") :].split("/", 1)[0]
    return bool(bucket) and not name.startswith("/") and name.split("/", 1)[0] == bucket


def _scrub_safely(text: str) -> str:
    """Registered secrets removed from `text` (unchanged if the settings themselves are broken)."""
    from geoproc.redact import scrub as _scrub

    try:
        return _scrub(text)
    except Exception:  # noqa: BLE001 - an invalid setting must not hide the original error
        return text


def _is_s3_client_error(exc: BaseException) -> bool:
    botocore = sys.modules.get("botocore.exceptions")  # only loaded if S3 was used
    return botocore is not None and isinstance(exc, botocore.BotoCoreError | botocore.ClientError)


def _is_network_error(exc: OSError) -> bool:
    import socket
    import urllib.error

    return isinstance(exc, ConnectionError | TimeoutError | socket.gaierror | urllib.error.URLError)


def _s3_message(detail: str) -> str:
    """Name the S3 endpoint that failed; never echo a credential."""
    from geoproc.settings import get_settings

    endpoint = get_settings().resolved_s3_endpoint() or "the default AWS S3 endpoint"
    return (
        f"storage at {endpoint} failed: {detail}. Check that the endpoint is reachable and "
        "the credentials allowed, then run the same command again (it resumes)."
    )


def _internal_error(exc: BaseException) -> InternalError:
    """A bug: say so, keep the traceback in a file for the report, print no traceback."""
    import tempfile
    import traceback

    text = _scrub_safely("".join(traceback.format_exception(exc)))
    with tempfile.NamedTemporaryFile(
        "w", prefix="geoproc-traceback-", suffix=".txt", delete=False
    ) as f:
        f.write(text)
    return InternalError(
        f"internal error (a bug in geoproc, not a problem with your input): "
        f"{type(exc).__name__}: {_scrub_safely(str(exc))[:300]}. The traceback is in {f.name}; "
        "please report it with the command you ran."
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
