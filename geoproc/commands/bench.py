"""`geoproc bench NAME`: side-by-side throughput and memory measurements."""

from __future__ import annotations

import argparse
import importlib
import pkgutil


def register(sub: argparse._SubParsersAction) -> None:
    import geoproc.dev.bench as pkg

    parser = sub.add_parser("bench", help="run a benchmark and print a table of ratios")
    bench_sub = parser.add_subparsers(dest="bench", metavar="NAME", required=True)
    for m in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if not m.name.startswith("_"):
            importlib.import_module(f"geoproc.dev.bench.{m.name}").register(bench_sub)
