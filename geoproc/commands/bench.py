"""`geoproc bench NAME`: side-by-side throughput and memory measurements."""

from __future__ import annotations

import argparse
import importlib
import pkgutil

HELP = "run a benchmark and print a table of ratios"


def register_summary(sub: argparse._SubParsersAction) -> None:
    """The `bench` entry of `geoproc --help` without importing the benchmarks (numpy, psutil)."""
    sub.add_parser("bench", help=HELP)


def register(sub: argparse._SubParsersAction) -> None:
    import geoproc.dev.bench as pkg

    parser = sub.add_parser("bench", help=HELP)
    bench_sub = parser.add_subparsers(dest="bench", metavar="NAME", required=True)
    for m in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if not m.name.startswith("_"):
            importlib.import_module(f"geoproc.dev.bench.{m.name}").register(bench_sub)
